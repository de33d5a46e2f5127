"""Fixtures: which implementation (compiled kernels or pure-PyTorch fallback) and which device a
test runs on. CUDA cases skip cleanly where no GPU (or no CUDA build) is present. Helpers are in
tests/helpers/, not here."""

from __future__ import annotations

import pytest
import torch

import gradext
from gradext import _extension
from helpers.common import devices


@pytest.fixture(params=devices())
def device(request):
    return torch.device(request.param)


@pytest.fixture(params=["kernels", "fallback"])
def implementation(request):
    """Runs the test body once on the compiled kernels and once on the fallback."""
    if request.param == "kernels":
        if not gradext.has_extension():
            pytest.skip(f"gradext._C not loaded: {gradext.extension_error()}")
        yield "kernels"
    else:
        with _extension.force_fallback():
            yield "fallback"

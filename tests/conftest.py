"""Shared fixtures: which implementation (compiled kernels or pure-PyTorch fallback) and which
device a test runs on. CUDA cases skip cleanly where no GPU (or no CUDA build) is present."""

from __future__ import annotations

import contextlib

import pytest
import torch

import gradext
from gradext import _extension

ALL_DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]

requires_extension = pytest.mark.skipif(
    not gradext.has_extension(), reason=f"gradext._C not loaded: {gradext.extension_error()}"
)
requires_cuda = pytest.mark.skipif(
    not gradext.has_cuda(), reason="needs a CUDA device and a CUDA build of gradext"
)


def devices():
    return ["cpu", pytest.param("cuda", marks=[requires_cuda, pytest.mark.cuda])]


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


@contextlib.contextmanager
def num_threads(n: int):
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def tolerance(dtype: torch.dtype) -> dict:
    """Tolerances for comparing a result computed in `dtype` with a float64 reference."""
    return {
        torch.float64: dict(rtol=1e-12, atol=1e-12),
        torch.float32: dict(rtol=2e-6, atol=2e-6),
        torch.float16: dict(rtol=2e-3, atol=2e-3),
        torch.bfloat16: dict(rtol=1.6e-2, atol=1.6e-2),
    }[dtype]

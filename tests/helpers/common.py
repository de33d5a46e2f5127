"""What most test modules share: the dtypes, skip marks for the extension and CUDA, the devices
a test runs on, float64-reference tolerances per dtype, and a thread-count context."""

from __future__ import annotations

import contextlib

import pytest
import torch

import gradext

ALL_DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]

requires_extension = pytest.mark.skipif(
    not gradext.has_extension(), reason=f"gradext._C not loaded: {gradext.extension_error()}"
)
requires_cuda = pytest.mark.skipif(
    not gradext.has_cuda(), reason="needs a CUDA device and a CUDA build of gradext"
)


def devices():
    return ["cpu", pytest.param("cuda", marks=[requires_cuda, pytest.mark.cuda])]


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


def tau_tensor(value: float) -> torch.Tensor:
    """tau as the relaxed dispatcher ops take it (csrc/ops/relaxed.h): a float64 0-dim CPU
    tensor."""
    return torch.tensor(value, dtype=torch.float64)

"""Every implementation an op has on this machine: the pure-PyTorch fallback, the CPU kernels of
each instruction-set variant the CPU runs, and the CUDA kernels. Contract tests take the `path`
fixture built from `every_path()` so that one assertion covers them all; variants the machine
lacks skip with the reason."""

from __future__ import annotations

import contextlib

import pytest
import torch

import gradext
from gradext import _extension
from helpers.common import requires_cuda

CPU_VARIANTS = ("default", "avx2", "avx512")


def cpu_variants_supported() -> list[str]:
    best = gradext.cpu_isa()
    if best is None:
        return []
    return list(CPU_VARIANTS[: CPU_VARIANTS.index(best) + 1])


def every_path():
    params = [pytest.param("fallback")]
    supported = cpu_variants_supported()
    for variant in CPU_VARIANTS:
        marks = []
        if variant not in supported:
            reason = (
                "gradext._C not loaded"
                if not gradext.has_extension()
                else f"this CPU does not run the {variant} kernels"
            )
            marks.append(pytest.mark.skip(reason=reason))
        params.append(pytest.param(f"cpu-{variant}", marks=marks))
    params.append(pytest.param("cuda", marks=[requires_cuda, pytest.mark.cuda]))
    return params


@contextlib.contextmanager
def on_path(path: str):
    """Runs the body on `path`; yields the device its tensors go on."""
    if path == "fallback":
        with _extension.force_fallback():
            yield torch.device("cpu")
    elif path == "cuda":
        yield torch.device("cuda")
    else:
        _extension._C.set_cpu_isa(path.removeprefix("cpu-"))
        try:
            yield torch.device("cpu")
        finally:
            _extension._C.set_cpu_isa("auto")

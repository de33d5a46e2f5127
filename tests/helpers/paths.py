"""Every implementation an op has on this machine: the pure-PyTorch fallback, the CPU kernels of
each instruction-set variant the CPU runs and the build has, and the CUDA kernels. Contract tests
take the `path` fixture built from `every_path()` so that one assertion covers them all; variants
the machine (or the build, GRADEXT_CPU_VARIANTS) lacks skip with the reason."""

from __future__ import annotations

import contextlib

import pytest
import torch

import gradext
from gradext import _extension
from helpers.common import requires_cuda

CPU_VARIANTS = ("default", "avx2", "avx512")


def cpu_variants_supported() -> list[str]:
    """The variants this CPU runs and this build compiled (GRADEXT_CPU_VARIANTS), lowest first."""
    best = gradext.cpu_isa()
    if best is None:
        return []
    built = _extension._C.built_cpu_isas()
    return [v for v in CPU_VARIANTS[: CPU_VARIANTS.index(best) + 1] if v in built]


def _missing_variant_reason(variant: str) -> str:
    if not gradext.has_extension():
        return "gradext._C not loaded"
    if variant not in _extension._C.built_cpu_isas():
        return f"this build has no {variant} kernels (GRADEXT_CPU_VARIANTS=all builds them)"
    return f"this CPU does not run the {variant} kernels"


def skip_unless_cpu_variant(variant: str) -> None:
    """Skips the calling test where this machine cannot run the variant's kernels."""
    if variant not in cpu_variants_supported():
        pytest.skip(_missing_variant_reason(variant))


def cpu_variants_to_compare() -> list[str]:
    """The variants a bitwise cross-variant test compares; skips the test where there are fewer
    than two (a build of one variant, GRADEXT_CPU_VARIANTS=native, or a CPU without AVX2),
    rather than let it compare one variant with itself."""
    variants = cpu_variants_supported()
    if len(variants) < 2:
        missing = next(v for v in CPU_VARIANTS if v not in variants)
        pytest.skip(f"fewer than two CPU variants to compare: {_missing_variant_reason(missing)}")
    return variants


def every_path():
    params = [pytest.param("fallback")]
    supported = cpu_variants_supported()
    for variant in CPU_VARIANTS:
        marks = []
        if variant not in supported:
            marks.append(pytest.mark.skip(reason=_missing_variant_reason(variant)))
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

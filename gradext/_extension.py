"""Loading of the compiled extension, and which implementation each device gets.

The kernels live in ``gradext._C``; when it cannot be loaded (not built, ABI mismatch) or
``GRADEXT_DISABLE_EXT=1`` is set, every op runs on the pure-PyTorch fallback in
``gradext.reference`` instead, after one warning (none when disabled on purpose).
"""

from __future__ import annotations

import contextlib
import os
import warnings

import torch

_C = None
_load_error: str | None = None
_disabled_by_env = os.environ.get("GRADEXT_DISABLE_EXT", "0") == "1"
_forced_fallback = False
_warned: set[str] = set()

if _disabled_by_env:
    _load_error = "disabled by GRADEXT_DISABLE_EXT=1"
else:
    try:
        from gradext import _C  # noqa: F811  (torch is imported first: _C links libtorch)
    except ImportError as error:  # not built, or built against another torch
        _load_error = f"{type(error).__name__}: {error}"

# uses_kernels(cpu) as a plain value, for the eager entries' short way (the plain call of
# gradext/gaussian.py), where a function call is a quarter of a microsecond: kept equal to
# has_extension() by force_fallback below.
kernels_on_cpu = _C is not None


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def has_extension() -> bool:
    """Whether the compiled kernels are loaded and in use."""
    return _C is not None and not _forced_fallback


def has_cuda() -> bool:
    """Whether CUDA tensors run on gradext's CUDA kernels (built with CUDA, and a GPU present)."""
    return has_extension() and _C.built_with_cuda() and torch.cuda.is_available()


def extension_error() -> str | None:
    """Why the extension is not loaded, or None when it is."""
    return _load_error


def cpu_isa() -> str | None:
    """The CPU kernel variant in use ('default', 'avx2', 'avx512'); None without the extension."""
    return _C.cpu_isa() if has_extension() else None


def uses_kernels(device: torch.device) -> bool:
    """Whether an op on `device` dispatches to the compiled kernels (else: the fallback)."""
    if _forced_fallback:
        return False
    if _C is not None and device.type == "cpu":  # the common case first: every call asks
        return True
    if _C is None:
        if not _disabled_by_env:
            _warn_once(
                "load",
                f"gradext: the compiled extension could not be loaded ({_load_error}); "
                "every op runs on the slower pure-PyTorch fallback",
            )
        return False
    if device.type in ("cpu", "meta"):
        return True
    if device.type == "cuda":
        if _C.built_with_cuda():
            return True
        _warn_once(
            "cuda",
            "gradext: this build has no CUDA kernels; CUDA tensors use the pure-PyTorch fallback",
        )
        return False
    return False


@contextlib.contextmanager
def force_fallback():
    """Run every op on the pure-PyTorch fallback inside the block (for tests and benchmarks)."""
    global _forced_fallback, kernels_on_cpu
    previous = _forced_fallback
    _forced_fallback = True
    kernels_on_cpu = False
    try:
        yield
    finally:
        _forced_fallback = previous
        kernels_on_cpu = has_extension()

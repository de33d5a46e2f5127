"""The `von_mises_math` fixture: csrc/common's von Mises maths (von_mises_sampler.h,
von_mises_math.h) compiled into a small shared library (tests/von_mises/von_mises_shim.cpp,
helpers/native_shim.py) and called through ctypes: the scalar header code, which the CUDA kernel
runs and the CPU kernels' vector passes must reproduce bitwise."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

from helpers.native_shim import build_shim


@pytest.fixture(scope="package")
def von_mises_math(tmp_path_factory):
    lib = build_shim(tmp_path_factory, "tests/von_mises/von_mises_shim.cpp", "von_mises_math")
    lib.gradext_von_mises_ddelta_dkappa.restype = ctypes.c_double
    lib.gradext_von_mises_ddelta_dkappa.argtypes = [ctypes.c_double, ctypes.c_double]
    for name in ("gradext_exp_vectorizable", "gradext_sin_quarter_turn"):
        getattr(lib, name).restype = ctypes.c_double
        getattr(lib, name).argtypes = [ctypes.c_double]
    for name, c_type, np_type in (
        ("gradext_von_mises_float", ctypes.c_float, np.float32),
        ("gradext_von_mises_double", ctypes.c_double, np.float64),
    ):
        getattr(lib, name).restype = None
        getattr(lib, name).argtypes = [
            c_type,
            c_type,
            ctypes.c_uint64,
            ctypes.c_uint64,
            ctypes.c_uint64,
            ctypes.c_int64,
            np.ctypeslib.ndpointer(np_type, flags="C_CONTIGUOUS"),
        ]
    return lib

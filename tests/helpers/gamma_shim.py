"""The `gamma_math` fixture: csrc/common's Gamma maths (gamma_math.h, gamma_sampler.h) compiled
into a small shared library (tests/gamma/gamma_math_shim.cpp, helpers/native_shim.py) and called
through ctypes, so the host/device code is checked against scipy and mpmath directly, and the
Gamma and Dirichlet ops against it. Each test package that uses it imports it in its
conftest.py."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

from helpers.native_shim import build_shim


@pytest.fixture(scope="package")
def gamma_math(tmp_path_factory):
    lib = build_shim(tmp_path_factory, "tests/gamma/gamma_math_shim.cpp", "gamma_math")
    for name in (
        "gradext_standard_gamma_dz_dalpha",
        "gradext_dz_dalpha_series",
        "gradext_dz_dalpha_continued_fraction",
        "gradext_standard_gamma_dlog_dalpha",
    ):
        getattr(lib, name).restype = ctypes.c_double
        getattr(lib, name).argtypes = [ctypes.c_double, ctypes.c_double]
    double_array = np.ctypeslib.ndpointer(np.float64, flags="C_CONTIGUOUS")
    lib.gradext_dirichlet_row_double.restype = ctypes.c_int64
    lib.gradext_dirichlet_row_double.argtypes = [
        double_array,
        ctypes.c_int64,
        ctypes.c_uint64,
        ctypes.c_uint64,
        ctypes.c_uint64,
        double_array,
        double_array,
    ]
    lib.gradext_dirichlet_row_backward_double.restype = None
    lib.gradext_dirichlet_row_backward_double.argtypes = [double_array] * 4 + [
        ctypes.c_int64,
        double_array,
    ]
    lib.gradext_digamma.restype = ctypes.c_double
    lib.gradext_digamma.argtypes = [ctypes.c_double]
    for name, c_type, np_type in (
        ("gradext_standard_gamma_float", ctypes.c_float, np.float32),
        ("gradext_standard_gamma_double", ctypes.c_double, np.float64),
    ):
        getattr(lib, name).restype = None
        getattr(lib, name).argtypes = [
            c_type,
            ctypes.c_uint64,
            ctypes.c_uint64,
            ctypes.c_uint64,
            ctypes.c_int64,
            np.ctypeslib.ndpointer(np_type, flags="C_CONTIGUOUS"),
        ]
    return lib

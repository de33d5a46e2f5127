"""The `gamma_math` fixture: csrc/common's Gamma maths (gamma_math.h, gamma_sampler.h) compiled
with the C++ compiler into a small shared library (tests/gamma/gamma_math_shim.cpp) and called
through ctypes, so the host/device code is checked against scipy and mpmath directly, and the
Gamma and Dirichlet ops against it. Compiled with the extension's floating-point flags. Each test
package that uses it imports it in its conftest.py."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess

import numpy as np
import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COMPILER = shutil.which(os.environ.get("CXX", "c++")) or shutil.which("g++")


@pytest.fixture(scope="package")
def gamma_math(tmp_path_factory):
    if COMPILER is None:
        pytest.skip("no C++ compiler to build the shim")
    library = tmp_path_factory.mktemp("gamma_math") / "libgamma_math.so"
    subprocess.run(
        [
            COMPILER,
            "-O2",
            "-std=c++20",  # torch's headers (sample_range.h reads c10's Half and BFloat16)
            "-ffp-contract=off",  # as the extension is built
            "-fno-math-errno",
            "-fno-trapping-math",
            "-shared",
            "-fPIC",
            f"-I{os.path.join(REPO, 'csrc')}",
            f"-I{os.path.join(os.path.dirname(torch.__file__), 'include')}",
            os.path.join(REPO, "tests", "gamma", "gamma_math_shim.cpp"),
            "-o",
            str(library),
        ],
        check=True,
    )
    lib = ctypes.CDLL(str(library))
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

"""Compiles a test shim of csrc/common's host/device headers (a .cpp with C entry points) into a
shared library for ctypes, with the extension's floating-point flags, so that tests call the
scalar header code itself: the code the CUDA kernels run, against which the CPU kernels' vector
passes are checked bitwise and the maths against scipy and mpmath."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess

import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COMPILER = shutil.which(os.environ.get("CXX", "c++")) or shutil.which("g++")


def build_shim(tmp_path_factory, source: str, name: str) -> ctypes.CDLL:
    """`source`: the shim's path relative to the repository root; `name`: the library's."""
    if COMPILER is None:
        pytest.skip("no C++ compiler to build the shim")
    library = tmp_path_factory.mktemp(name) / f"lib{name}.so"
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
            os.path.join(REPO, source),
            "-o",
            str(library),
        ],
        check=True,
    )
    return ctypes.CDLL(str(library))

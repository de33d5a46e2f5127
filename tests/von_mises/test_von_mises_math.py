"""The double-precision pieces the von Mises backward's vector lanes are made of
(csrc/common/scalar_math.h, through the ctypes shim): exp_vectorizable and sin_quarter_turn
within 2 ulps of the correctly rounded values (mpmath at 30 digits) over their whole domains,
with the clamps and end points exact."""

from __future__ import annotations

import math

import numpy as np
import pytest


def _ulps(got: float, exact) -> float:
    return abs(got - float(exact)) / math.ulp(float(exact))


def test_exp_within_two_ulps(von_mises_math):
    mpmath = pytest.importorskip("mpmath")
    rng = np.random.default_rng(0)
    points = np.concatenate(
        [
            rng.uniform(-708, 709, 3000),
            rng.uniform(-2, 2, 3000),
            [0.0, 1e-300, -1e-300, 0.5 * math.log(2)],
        ]
    )
    with mpmath.workdps(30):
        worst = max(
            _ulps(von_mises_math.gradext_exp_vectorizable(x), mpmath.exp(x)) for x in points
        )
    assert worst <= 2.0, worst
    assert von_mises_math.gradext_exp_vectorizable(0.0) == 1.0
    # clamped, never inf or subnormal
    assert von_mises_math.gradext_exp_vectorizable(1e4) == von_mises_math.gradext_exp_vectorizable(
        709.0
    )
    assert (
        von_mises_math.gradext_exp_vectorizable(-1e4)
        == von_mises_math.gradext_exp_vectorizable(-708.0)
        > 0
    )


def test_sine_of_a_quarter_turn_within_two_ulps(von_mises_math):
    mpmath = pytest.importorskip("mpmath")
    rng = np.random.default_rng(1)
    points = np.concatenate(
        [rng.uniform(0, math.pi / 2, 5000), rng.uniform(0, 1e-6, 500), [math.pi / 4, 1e-300]]
    )
    with mpmath.workdps(30):
        worst = max(
            _ulps(von_mises_math.gradext_sin_quarter_turn(u), mpmath.sin(u)) for u in points
        )
    assert worst <= 2.0, worst
    assert von_mises_math.gradext_sin_quarter_turn(0.0) == 0.0
    assert von_mises_math.gradext_sin_quarter_turn(math.pi / 2) == 1.0

"""The implicit reparameterization gradient of a standard Gamma sample, dz/dalpha =
-(dP(alpha, z)/dalpha) / p(z; alpha), as csrc/common/gamma_math.h computes it on the host and the
device: against mpmath (the incomplete gamma function differentiated at 40 digits) over alpha in
[1e-3, 1e4] and z from the 1e-6 to the 1 - 1e-6 quantile and beyond, at a relative error of at
most 1e-12 (the float64 target is 1e-10; the float types round the double result). The header is
compiled into a small shared library with the C++ compiler and called through ctypes
(tests/gamma/conftest.py)."""

from __future__ import annotations

import mpmath
import pytest
import scipy.special

ALPHAS = [1e-3, 1e-2, 0.1, 0.5, 1.0, 2.5, 10.0, 100.0, 1e3, 1e4]
QUANTILES = [1e-6, 1e-3, 0.05, 0.3, 0.5, 0.7, 0.95, 0.999, 1 - 1e-6]


def _reference(alpha: float, z: float) -> float:
    """dz/dalpha in 40-digit arithmetic, through whichever of P and Q = 1 - P is not close to 1
    (dP/dalpha = -dQ/dalpha; differentiating a function that rounds to 1 loses everything)."""
    with mpmath.workdps(40):
        a, x = mpmath.mpf(alpha), mpmath.mpf(z)
        if x > a:
            upper = lambda s: mpmath.gammainc(s, x, mpmath.inf, regularized=True)  # noqa: E731
            d_upper = mpmath.diff(upper, a)
        else:
            lower = lambda s: mpmath.gammainc(s, 0, x, regularized=True)  # noqa: E731
            d_upper = -mpmath.diff(lower, a)
        density = mpmath.exp((a - 1) * mpmath.log(x) - x - mpmath.loggamma(a))
        return float(d_upper / density)


def _grid():
    for alpha in ALPHAS:
        for q in QUANTILES:
            z = float(scipy.special.gammaincinv(alpha, q))
            if z > 1e-300:  # below: half of Gamma(1e-3) lies under the smallest double
                yield alpha, z
    # Far tails and tiny samples.
    yield from [(1e-3, 1e-300), (1e-3, 40.0), (1e-3, 700.0), (2.0, 80.0), (5.0, 1e-8)]
    yield from [(1e4, 8000.0), (1e4, 12000.0), (50.0, 500.0)]


@pytest.mark.parametrize("alpha, z", list(_grid()), ids=lambda v: f"{v:.6g}")
def test_dz_dalpha_matches_mpmath(gamma_math, alpha, z):
    got = gamma_math.gradext_standard_gamma_dz_dalpha(alpha, z)
    want = _reference(alpha, z)
    assert abs(got - want) <= 1e-12 * abs(want), (got, want)


@pytest.mark.parametrize("alpha", [1e-3, 0.5, 2.0, 300.0, 1e4])
@pytest.mark.parametrize("offset", [-1e-9, 0.0, 1e-9, 0.5])
def test_series_and_continued_fraction_agree_at_the_switch(gamma_math, alpha, offset):
    """The two expansions are independent computations; around z = max(alpha + 1, 1), where
    the header switches from one to the other, both converge and give the same value."""
    z = max(alpha + 1.0, 1.0) + offset
    series = gamma_math.gradext_dz_dalpha_series(alpha, z)
    fraction = gamma_math.gradext_dz_dalpha_continued_fraction(alpha, z)
    assert abs(series - fraction) <= 1e-12 * abs(fraction), (series, fraction)


@pytest.mark.parametrize("x", [1e-3, 0.3, 1.0, 2.5, 9.99, 10.0, 55.0, 1e4, 1e8])
def test_digamma_matches_mpmath(gamma_math, x):
    want = float(mpmath.digamma(x))
    assert abs(gamma_math.gradext_digamma(x) - want) <= 1e-15 * max(1.0, abs(want))

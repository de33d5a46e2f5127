"""The implicit reparameterization gradient of a standard Gamma sample, dz/dalpha =
-(dP(alpha, z)/dalpha) / p(z; alpha), as csrc/common/gamma_math.h computes it on the host and the
device: against mpmath (the incomplete gamma function differentiated at 40 digits) over alpha in
[1e-3, 1e4] and z from the 1e-6 to the 1 - 1e-6 quantile and beyond, at a relative error of at
most 1e-12 (the float64 target is 1e-10; the float types round the double result). The header is
compiled into a small shared library with the C++ compiler and called through ctypes
(tests/helpers/gamma_shim.py)."""

from __future__ import annotations

import mpmath
import pytest

pytest.importorskip("scipy", reason="scipy places the points (the GPU check machines lack it)")
from helpers.gamma import mpmath_dz_dalpha, reference_points  # noqa: E402


@pytest.mark.parametrize("alpha, z", list(reference_points()), ids=lambda v: f"{v:.6g}")
def test_dz_dalpha_matches_mpmath(gamma_math, alpha, z):
    got = gamma_math.gradext_standard_gamma_dz_dalpha(alpha, z)
    want = mpmath_dz_dalpha(alpha, z)
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


@pytest.mark.parametrize("alpha", [1e-3, 0.3, 1.0, 40.0])
@pytest.mark.parametrize("log_z", [-5000.0, -700.0, -689.0, -20.0, -1.0, 0.5, 3.0])
def test_dlog_dalpha_matches_mpmath_also_where_z_underflows(gamma_math, alpha, log_z):
    """d log z / d alpha from log z (the Dirichlet backward's input): below z = 1e-300 the
    series' first term alone, (psi(alpha + 1) - log z) / alpha; above, dz/dalpha / z. Against
    mpmath's incomplete gamma at 40 digits (the underflowing points with mpmath's own big
    exponents), relative error at most 1e-12."""
    got = gamma_math.gradext_standard_gamma_dlog_dalpha(alpha, log_z)
    with mpmath.workdps(40):
        a, z = mpmath.mpf(alpha), mpmath.exp(mpmath.mpf(log_z))
        lower = lambda s: mpmath.gammainc(s, 0, z, regularized=True)  # noqa: E731
        upper = lambda s: mpmath.gammainc(s, z, mpmath.inf, regularized=True)  # noqa: E731
        d_upper = mpmath.diff(upper, a) if z > a else -mpmath.diff(lower, a)
        density = mpmath.exp((a - 1) * mpmath.log(z) - z - mpmath.loggamma(a))
        want = float(d_upper / density / z)
    assert abs(got - want) <= 1e-12 * abs(want), (got, want)

"""Standard Gamma samples on Philox sub-streams (csrc/common/gamma_sampler.h, philox.h:
PhiloxSubstream), in the float and double math types: the distribution (one-sample
Kolmogorov-Smirnov against scipy's Gamma CDF, 20,000 samples, p > 1e-3, a threshold a correct
sampler misses once in a thousand seeds; the seeds are fixed), tiny concentrations (never 0 or
NaN; the probability below fixed points by a binomial z-test, |z| < 4.5), and each element a pure
function of (seed, offset, element)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("scipy", reason="scipy is the reference (the GPU check machines lack it)")
import scipy.special  # noqa: E402
import scipy.stats  # noqa: E402

DTYPES = {"float": np.float32, "double": np.float64}


def _samples(lib, dtype, alpha, seed=123, offset=7, first=0, n=20_000):
    out = np.empty(n, DTYPES[dtype])
    getattr(lib, f"gradext_standard_gamma_{dtype}")(alpha, seed, offset, first, n, out)
    return out


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("alpha", [0.1, 0.5, 1.0, 2.5, 10.0, 1e3, 1e4])
def test_samples_follow_the_gamma_distribution(gamma_math, dtype, alpha):
    z = _samples(gamma_math, dtype, alpha).astype(np.float64)
    assert np.isfinite(z).all() and (z > 0).all()
    assert scipy.stats.kstest(z, scipy.stats.gamma(alpha).cdf).pvalue > 1e-3


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("alpha", [1e-3, 1e-2])
def test_tiny_concentrations_stay_in_the_support(gamma_math, dtype, alpha):
    """Most of Gamma(1e-3) lies below the smallest normal float (91.6%; of double, 49%): those
    samples are clamped to it, never 0; above it the law is exact."""
    z = _samples(gamma_math, dtype, alpha, n=40_000).astype(np.float64)
    smallest = np.finfo(DTYPES[dtype]).tiny
    assert not np.isnan(z).any() and np.isfinite(z).all() and (z >= smallest).all()
    for point in (1e-30, 1e-10, 1e-3, 0.1, 1.0):
        if point <= smallest:
            continue
        p = scipy.special.gammainc(alpha, point)
        observed = (z <= point).mean()
        zscore = (observed - p) / np.sqrt(p * (1 - p) / len(z))
        assert abs(zscore) < 4.5, (point, observed, p)


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("alpha", [0.3, 4.0])
def test_an_element_is_a_pure_function_of_seed_offset_and_index(gamma_math, dtype, alpha):
    whole = _samples(gamma_math, dtype, alpha, n=1000)
    part = _samples(gamma_math, dtype, alpha, first=500, n=100)
    assert np.array_equal(whole[500:600], part)  # however the work is split
    assert not np.array_equal(whole, _samples(gamma_math, dtype, alpha, offset=8, n=1000))
    assert not np.array_equal(whole, _samples(gamma_math, dtype, alpha, seed=124, n=1000))
    assert len(np.unique(whole)) == len(whole)  # elements draw from their own streams

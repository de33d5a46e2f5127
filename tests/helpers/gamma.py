"""References for the Gamma family's tests: dz/dalpha of a standard Gamma sample in 40-digit
mpmath (gradext/reference/gamma.py, shared with the accuracy benchmark), and the (alpha, z)
points it is checked on (alpha from 1e-3 to 1e4, z from the 1e-6 to the 1 - 1e-6 quantile, far
tails)."""

from __future__ import annotations

import scipy.special

from gradext.reference.gamma import mpmath_dz_dalpha  # noqa: F401  (the tests' oracle)

ALPHAS = [1e-3, 1e-2, 0.1, 0.5, 1.0, 2.5, 10.0, 100.0, 1e3, 1e4]
QUANTILES = [1e-6, 1e-3, 0.05, 0.3, 0.5, 0.7, 0.95, 0.999, 1 - 1e-6]


def reference_points():
    for alpha in ALPHAS:
        for q in QUANTILES:
            z = float(scipy.special.gammaincinv(alpha, q))
            if z > 1e-300:  # below: half of Gamma(1e-3) lies under the smallest double
                yield alpha, z
    # Far tails and tiny samples.
    yield from [(1e-3, 1e-300), (1e-3, 40.0), (1e-3, 700.0), (2.0, 80.0), (5.0, 1e-8)]
    yield from [(1e4, 8000.0), (1e4, 12000.0), (50.0, 500.0)]

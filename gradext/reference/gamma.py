"""The implicit reparameterization gradient of a standard Gamma sample in plain PyTorch: the same
maths as csrc/common/gamma_math.h (the differentiated power series of P below z = max(alpha + 1,
1), Legendre's continued fraction for Q in dual numbers above), vectorized with masks, in
float64 whatever the input dtype. The Gamma family's fallback and the tests' second oracle.

    dz/dalpha = -(dP(alpha, z)/dalpha) / p(z; alpha),   z ~ Gamma(alpha, 1)

Each expansion iterates until every element's next term is below float64 resolution; the
convergence test runs every ``CHECK_EVERY`` iterations (a device synchronization on a GPU).
"""

from __future__ import annotations

import torch

MAX_TERMS = 20_000  # as gamma_math.h: the series near z = alpha = 1e4 needs about 1,000
TOLERANCE = 1e-16
CHECK_EVERY = 16


def _series(alpha: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    # dz/dalpha = sum_n r_n (psi(alpha + n + 1) - ln z),
    # r_0 = z / alpha, r_n = r_(n-1) z / (alpha + n)
    r = z / alpha
    psi_minus_log_z = torch.digamma(alpha + 1) - torch.log(z)
    total = r * psi_minus_log_z
    for n in range(1, MAX_TERMS):
        an = alpha + n
        r = r * z / an
        psi_minus_log_z = psi_minus_log_z + 1 / an
        term = r * psi_minus_log_z
        total = total + term
        if n % CHECK_EVERY == 0:
            done = (term.abs() <= TOLERANCE * total.abs()) & (z < an)
            if bool(done.all()):
                break
    return total


def _continued_fraction(alpha: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    # Modified Lentz on F = 1 / (b_0 - a_1 / (b_1 - ...)), b_k = z + 2k + 1 - alpha,
    # a_k = k (k - alpha), carrying each quantity's derivative in alpha (dual numbers).
    tiny = 1e-300

    def divide(a, da, b, db):
        q = a / b
        return q, (da - q * db) / b

    def floor_tiny(v):
        return torch.where(v.abs() < tiny, torch.full_like(v, tiny), v)

    one, zero = torch.ones_like(z), torch.zeros_like(z)
    b, db = z + 1 - alpha, -one
    c, dc = torch.full_like(z, 1 / tiny), zero
    d, dd = divide(one, zero, b, db)
    f, df = d, dd
    for k in range(1, MAX_TERMS):
        minus_a, dminus_a = -k * (k - alpha), torch.full_like(z, float(k))
        b = b + 2
        d, dd = b + minus_a * d, db + dminus_a * d + minus_a * dd
        d = floor_tiny(d)
        ratio, dratio = divide(minus_a, dminus_a, c, dc)
        c, dc = b + ratio, db + dratio
        c = floor_tiny(c)
        d, dd = divide(one, zero, d, dd)
        delta, ddelta = c * d, dc * d + c * dd
        f, df = f * delta, df * delta + f * ddelta
        if k % CHECK_EVERY == 0:
            done = ((delta - 1).abs() <= TOLERANCE) & (ddelta.abs() <= TOLERANCE * (df / f).abs())
            if bool(done.all()):
                break
    return z * ((torch.log(z) - torch.digamma(alpha)) * f + df)


def standard_gamma_dz_dalpha(alpha: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """dz/dalpha of standard Gamma(alpha, 1) samples z (alpha > 0, z > 0; broadcast), in
    float64."""
    alpha, z = torch.broadcast_tensors(alpha.to(torch.float64), z.to(torch.float64))
    use_series = (z < alpha + 1) | (z < 1)
    out = torch.empty_like(z)
    if bool(use_series.any()):
        out[use_series] = _series(alpha[use_series], z[use_series])
    upper = ~use_series
    if bool(upper.any()):
        out[upper] = _continued_fraction(alpha[upper], z[upper])
    return out

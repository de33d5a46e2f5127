"""The two goodness-of-fit tests the suite needs, in torch alone: the GPU check machines have no
scipy. tests/test_stats_helpers.py checks both against scipy.stats where scipy is installed."""

from __future__ import annotations

import math

import torch


def ks_normal_pvalue(samples: torch.Tensor) -> float:
    """Two-sided one-sample Kolmogorov-Smirnov p-value against N(0, 1), with the asymptotic
    Kolmogorov distribution and Stephens' small-sample correction (accurate to ~1e-3 in p for
    n >= 100, which is all a threshold of 1e-3 needs)."""
    x = samples.detach().double().flatten().cpu().sort().values
    n = x.numel()
    cdf = 0.5 * torch.erfc(-x / math.sqrt(2.0))
    i = torch.arange(1, n + 1, dtype=torch.float64)
    d = max((i / n - cdf).max().item(), (cdf - (i - 1) / n).max().item())
    lam = (math.sqrt(n) + 0.12 + 0.11 / math.sqrt(n)) * d
    if lam < 0.2:
        return 1.0
    p = 2.0 * sum((-1) ** (k - 1) * math.exp(-2.0 * k * k * lam * lam) for k in range(1, 101))
    return min(max(p, 0.0), 1.0)


def chisquare_pvalue(observed: torch.Tensor, expected: torch.Tensor) -> float:
    """Pearson chi-square goodness-of-fit p-value with len - 1 degrees of freedom."""
    observed = observed.double().flatten()
    expected = expected.double().flatten()
    statistic = ((observed - expected) ** 2 / expected).sum()
    df = observed.numel() - 1
    return torch.special.gammaincc(
        torch.tensor(df / 2.0, dtype=torch.float64), statistic / 2.0
    ).item()

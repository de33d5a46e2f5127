"""Statistical correctness of gaussian_rsample's samples. Fixed seeds make each test
deterministic; the thresholds are what a correct sampler passes with high probability
(a 5-sigma band for moments, a 1e-3 significance level for Kolmogorov-Smirnov)."""

from __future__ import annotations

import math

import pytest
import torch

import gradext
from helpers.common import ALL_DTYPES
from helpers.stats import ks_normal_pvalue


def _standardized(implementation_device, dtype, n_rows=2000, dim=250, num_samples=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    mu = (3.0 * torch.randn(n_rows, dim, generator=g)).to(implementation_device, dtype)
    logvar = (torch.rand(n_rows, dim, generator=g) * 4 - 2).to(implementation_device, dtype)
    gen = torch.Generator(device=implementation_device).manual_seed(seed + 1)
    z = gradext.gaussian_rsample(mu, logvar, num_samples, generator=gen)
    # Standardize in float64 with the inputs as the op saw them.
    eps = (z.double() - mu.double()) / torch.exp(0.5 * logvar.double())
    return eps.flatten().cpu()


def test_standardized_noise_is_standard_normal(implementation, device):
    eps = _standardized(device, torch.float64)  # 1M draws
    n = eps.numel()
    mean, var = eps.mean().item(), eps.var().item()
    assert abs(mean) < 5 / math.sqrt(n), mean
    assert abs(var - 1) < 5 * math.sqrt(2 / n), var
    # Kolmogorov-Smirnov against N(0, 1) on a 200k subsample.
    assert ks_normal_pvalue(eps[:200_000]) > 1e-3


@pytest.mark.parametrize("dtype", [torch.float32])
def test_float32_noise_moments_and_ks(implementation, device, dtype):
    eps = _standardized(device, dtype, seed=3)
    n = eps.numel()
    assert abs(eps.mean().item()) < 5 / math.sqrt(n)
    assert abs(eps.var().item() - 1) < 5 * math.sqrt(2 / n)
    assert ks_normal_pvalue(eps[:200_000]) > 1e-3


def test_samples_are_uncorrelated_across_k_and_elements(implementation, device):
    mu = torch.zeros(4096, 8, dtype=torch.float64, device=device)
    logvar = torch.zeros_like(mu)
    z = gradext.gaussian_rsample(
        mu, logvar, 2, generator=torch.Generator(device=device).manual_seed(4)
    )
    a, b = z[0].flatten().cpu(), z[1].flatten().cpu()
    n = a.numel()
    # Sample correlation of independent normals ~ N(0, 1/n): 5-sigma band.
    assert abs(torch.corrcoef(torch.stack([a, b]))[0, 1]) < 5 / math.sqrt(n)
    # Neighbouring elements (the two outputs of one Box-Muller pair) too.
    assert abs(torch.corrcoef(torch.stack([a[0::2], a[1::2]]))[0, 1]) < 5 / math.sqrt(n / 2)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_never_nan_or_inf(implementation, device, dtype):
    mu = torch.zeros(1 << 20, dtype=dtype, device=device)
    logvar = torch.zeros_like(mu)
    z = gradext.gaussian_rsample(
        mu, logvar, 4, generator=torch.Generator(device=device).manual_seed(0)
    )
    assert torch.isfinite(z).all()

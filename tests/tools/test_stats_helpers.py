"""The suite's own goodness-of-fit tests agree with scipy.stats (skipped where scipy is absent)."""

from __future__ import annotations

import pytest
import torch

from helpers.stats import chisquare_pvalue, ks_normal_pvalue

stats = pytest.importorskip("scipy.stats")


@pytest.mark.parametrize("shift", [0.0, 0.003, 0.01, 0.05])
def test_ks_matches_scipy(shift):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(200_000, generator=g, dtype=torch.float64) + shift
    ours = ks_normal_pvalue(x)
    theirs = stats.kstest(x.numpy(), "norm").pvalue
    assert abs(ours - theirs) < 2e-3 + 0.02 * theirs, (ours, theirs)


def test_ks_rejects_a_wrong_distribution():
    x = torch.rand(10_000, generator=torch.Generator().manual_seed(0)) * 4 - 2
    assert ks_normal_pvalue(x) < 1e-6


@pytest.mark.parametrize("scale", [0.0, 0.5, 2.0])
def test_chisquare_matches_scipy(scale):
    expected = torch.tensor([100.0, 250.0, 50.0, 600.0])
    observed = expected + scale * torch.tensor([10.0, -15.0, 12.0, -7.0])
    ours = chisquare_pvalue(observed, expected)
    theirs = stats.chisquare(observed.numpy(), expected.numpy()).pvalue
    assert ours == pytest.approx(theirs, rel=1e-9, abs=1e-12)

"""gradext.reference.gamma.standard_gamma_dz_dalpha (the Gamma family's pure-PyTorch gradient)
against mpmath on the points of tests/helpers/gamma.py (relative error <= 1e-12) and against the
header it mirrors on random (alpha, z) pairs across both expansions (<= 1e-12)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gradext.reference.gamma import standard_gamma_dlog_dalpha, standard_gamma_dz_dalpha

pytest.importorskip("scipy", reason="scipy places the points (the GPU check machines lack it)")
from helpers.gamma import mpmath_dz_dalpha, reference_points  # noqa: E402


def test_matches_mpmath_on_the_grid():
    points = list(reference_points())
    alpha = torch.tensor([a for a, _ in points], dtype=torch.float64)
    z = torch.tensor([x for _, x in points], dtype=torch.float64)
    got = standard_gamma_dz_dalpha(alpha, z)
    want = torch.tensor([mpmath_dz_dalpha(a, x) for a, x in points], dtype=torch.float64)
    rel = ((got - want).abs() / want.abs()).max().item()
    assert rel <= 1e-12, rel


def test_matches_the_header_on_random_points(gamma_math):
    g = np.random.default_rng(5)
    alpha = 10.0 ** g.uniform(-3, 4, 400)
    z = alpha * np.exp(g.normal(0, 1, 400) / np.sqrt(alpha + 1))  # around alpha, both sides
    got = standard_gamma_dz_dalpha(torch.from_numpy(alpha), torch.from_numpy(z)).numpy()
    want = np.array([gamma_math.gradext_standard_gamma_dz_dalpha(a, x) for a, x in zip(alpha, z)])
    rel = np.max(np.abs(got - want) / np.abs(want))
    assert rel <= 1e-12, rel


def test_broadcasts_and_takes_any_floating_dtype():
    alpha = torch.tensor([[0.5], [3.0]], dtype=torch.float32)
    z = torch.tensor([0.2, 1.0, 9.0], dtype=torch.float16)
    out = standard_gamma_dz_dalpha(alpha, z)
    assert out.shape == (2, 3) and out.dtype == torch.float64
    assert torch.isfinite(out).all() and (out > 0).all()


def test_dlog_dalpha_matches_the_header(gamma_math):
    """The fallback's d log z / d alpha (Dirichlet) against the header's, underflowing z too."""
    alphas = [1e-3, 0.3, 1.0, 40.0, 2e3]
    log_zs = [-5000.0, -700.0, -689.0, -20.0, -1.0, 0.5, 3.0, 7.5]
    alpha = torch.tensor([a for a in alphas for _ in log_zs], dtype=torch.float64)
    log_z = torch.tensor(log_zs * len(alphas), dtype=torch.float64)
    got = standard_gamma_dlog_dalpha(alpha, log_z)
    want = torch.tensor(
        [gamma_math.gradext_standard_gamma_dlog_dalpha(a, lz) for a, lz in zip(alpha, log_z)],
        dtype=torch.float64,
    )
    torch.testing.assert_close(got, want, rtol=1e-12, atol=0)

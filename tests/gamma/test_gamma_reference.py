"""gradext.reference.gamma.standard_gamma_dz_dalpha (the Gamma family's pure-PyTorch gradient)
against mpmath on the points of tests/helpers/gamma.py (relative error <= 1e-12) and against the
header it mirrors on random (alpha, z) pairs across both expansions (<= 1e-12)."""

from __future__ import annotations

import numpy as np
import torch

from gradext.reference.gamma import standard_gamma_dz_dalpha
from helpers.gamma import mpmath_dz_dalpha, reference_points


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

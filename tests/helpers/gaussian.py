"""Helpers for the Gaussian tests: the fused op's own noise, recovered through the seeded op."""

from __future__ import annotations

import torch


def run_with_state(mu, logvar, num_samples=None, generator=None):
    """The fused op's (z, (seed, offset))."""
    z, state = torch.ops.gradext.gaussian_rsample(mu, logvar, num_samples, generator=generator)
    seed, offset = (int(v) for v in state.cpu())
    return z, (seed, offset)


def noise(shape, seed, offset, device="cpu", dtype=torch.float64, num_samples=None):
    """The standard normals the kernels draw for (seed, offset): the op with mu=0, logvar=0."""
    zeros = torch.zeros(shape, dtype=dtype, device=device)
    eps, _ = torch.ops.gradext._gaussian_rsample_seeded(zeros, zeros, num_samples, seed, offset)
    return eps

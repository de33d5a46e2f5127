"""Gaussian reparameterized sampling in plain PyTorch."""

from __future__ import annotations

import torch


def gaussian_rsample_from_noise(
    mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor
) -> torch.Tensor:
    """z = mu + exp(logvar / 2) * eps for given standard-normal noise eps (broadcasting)."""
    return mu + torch.exp(0.5 * logvar) * eps


def gaussian_rsample(
    mu: torch.Tensor,
    logvar: torch.Tensor,
    num_samples: int | None = None,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Same contract as gradext.gaussian_rsample, with noise from torch.randn; autograd keeps
    eps (and exp(logvar / 2)) alive for backward, which is what the fused op avoids."""
    shape = torch.broadcast_shapes(mu.shape, logvar.shape)
    if num_samples is not None:
        shape = (num_samples, *shape)
    dtype = torch.promote_types(mu.dtype, logvar.dtype)
    # generator=None is left out: torch.randn's generator overload rejects the symbolic shapes
    # of a dynamic-shape torch.compile.
    extra = {} if generator is None else {"generator": generator}
    eps = torch.randn(shape, dtype=dtype, device=mu.device, **extra)
    return gaussian_rsample_from_noise(mu, logvar, eps)


def normal_rsample_from_noise(
    loc: torch.Tensor, scale: torch.Tensor, eps: torch.Tensor
) -> torch.Tensor:
    """z = loc + scale * eps for given standard-normal noise eps (broadcasting)."""
    return loc + scale * eps


def normal_rsample(
    loc: torch.Tensor,
    scale: torch.Tensor,
    num_samples: int | None = None,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Same contract as gradext.normal_rsample, with noise from torch.randn."""
    shape = torch.broadcast_shapes(loc.shape, scale.shape)
    if num_samples is not None:
        shape = (num_samples, *shape)
    dtype = torch.promote_types(loc.dtype, scale.dtype)
    extra = {} if generator is None else {"generator": generator}
    eps = torch.randn(shape, dtype=dtype, device=loc.device, **extra)
    return normal_rsample_from_noise(loc, scale, eps)

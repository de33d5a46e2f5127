"""Gaussian reparameterized sampling in plain PyTorch, in both parametrizations of the spread
(gradext.gaussian_rsample's log-variance, gradext.normal_rsample's scale)."""

from __future__ import annotations

import torch


def gaussian_rsample_from_noise(
    mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor
) -> torch.Tensor:
    """z = mu + exp(logvar / 2) * eps for given standard-normal noise eps (broadcasting)."""
    return mu + torch.exp(0.5 * logvar) * eps


def normal_rsample_from_noise(
    loc: torch.Tensor, scale: torch.Tensor, eps: torch.Tensor
) -> torch.Tensor:
    """z = loc + scale * eps for given standard-normal noise eps (broadcasting)."""
    return loc + scale * eps


def _standard_normal(mean, spread, num_samples, generator) -> torch.Tensor:
    """eps of the sample's shape ((num_samples,) + the parameters' broadcast shape) and dtype."""
    shape = torch.broadcast_shapes(mean.shape, spread.shape)
    if num_samples is not None:
        shape = (num_samples, *shape)
    dtype = torch.promote_types(mean.dtype, spread.dtype)
    # generator=None is left out: torch.randn's generator overload rejects the symbolic shapes
    # of a dynamic-shape torch.compile.
    extra = {} if generator is None else {"generator": generator}
    return torch.randn(shape, dtype=dtype, device=mean.device, **extra)


def gaussian_rsample(
    mu: torch.Tensor,
    logvar: torch.Tensor,
    num_samples: int | None = None,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Same contract as gradext.gaussian_rsample, with noise from torch.randn; autograd keeps
    eps (and exp(logvar / 2)) alive for backward, which is what the fused op avoids."""
    eps = _standard_normal(mu, logvar, num_samples, generator)
    return gaussian_rsample_from_noise(mu, logvar, eps)


def normal_rsample(
    loc: torch.Tensor,
    scale: torch.Tensor,
    num_samples: int | None = None,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Same contract as gradext.normal_rsample, with noise from torch.randn (autograd keeps
    eps for the scale's gradient)."""
    eps = _standard_normal(loc, scale, num_samples, generator)
    return normal_rsample_from_noise(loc, scale, eps)

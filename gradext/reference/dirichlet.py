"""Dirichlet and Beta sampling with implicit reparameterization gradients in plain PyTorch (the
fallback of gradext.dirichlet_rsample and gradext.beta_rsample, and the tests' oracle).

x = g / sum(g), g_i ~ Gamma(alpha_i, 1), normalized in log space so that tiny concentrations
(whose Gamma draws underflow) give points of the simplex, never NaN: log g from
torch._standard_gamma(alpha + 1) and the boost log(u) / alpha below alpha = 1. The gradient of
log g_i in alpha_i is the implicit one (gradext/reference/gamma.py); through the softmax, autograd
gives x_i (grad_i - sum_j grad_j x_j) d log g_i / d alpha_i.
"""

from __future__ import annotations

import torch

from gradext.reference.gamma import (
    _expansion_function,
    check_gamma_parameter,
    standard_gamma_dlog_dalpha,
)

_DlogDalpha = _expansion_function(standard_gamma_dlog_dalpha, "dirichlet_rsample")


class _ImplicitLogGamma(torch.autograd.Function):
    """log g, given, as a function of alpha with the implicit derivative d log g / d alpha."""

    @staticmethod
    def forward(alpha, log_g):
        return log_g.clone()

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0], output)

    @staticmethod
    def backward(ctx, grad):
        alpha, log_g = ctx.saved_tensors
        return grad * _DlogDalpha.apply(alpha, log_g).to(grad.dtype), None

    @staticmethod
    def vmap(info, in_dims, alpha, log_g):
        alpha = alpha.movedim(in_dims[0], 0) if in_dims[0] is not None else alpha
        log_g = log_g.movedim(in_dims[1], 0) if in_dims[1] is not None else log_g
        return _ImplicitLogGamma.apply(alpha.expand_as(log_g), log_g), 0


def log_standard_gamma(alpha: torch.Tensor, generator=None) -> torch.Tensor:
    """log of standard Gamma(alpha, 1) samples (alpha > 0, any float dtype), without underflow."""
    extra = {} if generator is None else {"generator": generator}
    boost = alpha < 1
    g = torch._standard_gamma(torch.where(boost, alpha + 1, alpha), **extra)
    u = torch.rand(alpha.shape, dtype=alpha.dtype, device=alpha.device, **extra)
    u = u.clamp_min(torch.finfo(alpha.dtype).tiny)
    return torch.log(g) + torch.where(boost, torch.log(u) / alpha, torch.zeros_like(u))


def dirichlet_rsample(
    concentration: torch.Tensor,
    num_samples: int | None = None,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Same contract as gradext.dirichlet_rsample."""
    check_gamma_parameter("dirichlet_rsample", "concentration", concentration.detach())
    shape = concentration.shape if num_samples is None else (num_samples, *concentration.shape)
    dtype = concentration.dtype
    math_dtype = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    alpha = concentration.to(math_dtype).expand(shape)
    with torch.no_grad():
        log_g = log_standard_gamma(alpha.detach(), generator)
    x = torch.softmax(_ImplicitLogGamma.apply(alpha, log_g), dim=-1)
    # Never exactly 0 or 1 (as the kernels, csrc/common/sample_range.h: clamp_open_unit): at least
    # the dtype's smallest positive value, at most its largest value below 1.
    info = torch.finfo(dtype)
    return torch.clamp(x, info.smallest_normal * info.eps, 1 - info.eps / 2).to(dtype)

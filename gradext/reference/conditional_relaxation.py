"""The conditional relaxation of REBAR (Tucker et al. 2017, appendix) in plain PyTorch: the
fallback of gradext.conditional_relaxation, the tests' oracle on the kernels' own noise, and the
benchmarks' eager baseline. The formulas are csrc/common/conditional_relaxation.h's:

    Bernoulli:    z = x + L,  b = 1[z > 0],  z_tilde = +-softplus(L_v + softplus(+-x))
    categorical:  z = x + g,  b = argmax z,  z_tilde - z_tilde_b = -softplus(gt_b - gt - log_theta)

L, L_v logistic and g, gt Gumbel noise, log_theta = log_softmax(x). soft and soft_cond are the
relaxations sigmoid(. / tau) or softmax(. / tau) of z and z_tilde.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from gradext.reference.relaxed import gumbel_noise, logistic_noise, saturated_inv_tau

# softplus(x) is returned as x above this (e^-40 is below float64's resolution at 40), which keeps
# its gradient finite at +inf, where log1p(exp(x)) would give inf / inf.
_SOFTPLUS_THRESHOLD = 40.0


def _softplus(x):
    return F.softplus(x, threshold=_SOFTPLUS_THRESHOLD)


def relaxations_from_noise(logits, noise, cond_noise, tau=1.0, categorical=False, dim=-1):
    """(b, soft, soft_cond) of logits and the two noises (logistic for Bernoulli, Gumbel for
    categorical), computed in the noise's dtype (the math type) and returned in the logits'.
    Differentiable in logits (and in a tensor tau) to any order; b is not."""
    math_dtype = noise.dtype
    x = logits.to(math_dtype)
    inv_tau = saturated_inv_tau(tau, math_dtype)
    if not categorical:
        z = x + noise
        one = z > 0
        b = one.to(math_dtype).masked_fill(z.isnan(), math.nan)
        a = cond_noise + torch.where(one, _softplus(x), _softplus(-x))
        z_tilde = torch.where(one, _softplus(a), -_softplus(a))
        soft = torch.sigmoid(z * inv_tau)
        soft_cond = torch.sigmoid(z_tilde * inv_tau)
    else:
        z = x + noise
        index = z.detach().argmax(dim=dim, keepdim=True)
        is_b = torch.zeros_like(z, dtype=torch.bool).scatter_(dim, index, True)
        # (z - max z) / tau as the kernels compute it: no overflow at tiny tau.
        soft = torch.softmax((z - z.detach().amax(dim=dim, keepdim=True)) * inv_tau, dim=dim)
        log_theta = torch.log_softmax(x, dim=dim)
        cond_gumbel_b = cond_noise.gather(dim, index)
        offset = -_softplus(cond_gumbel_b - cond_noise - log_theta)
        d = torch.where(is_b, torch.zeros_like(offset), offset)
        soft_cond = torch.softmax(d * inv_tau, dim=dim)
        b = is_b.to(math_dtype)
        # A slice without a softmax (a NaN, a +inf, every category -inf): all three NaN.
        invalid = soft.detach().isnan().any(dim=dim, keepdim=True)
        b = b.masked_fill(invalid, math.nan)
        soft = soft.masked_fill(invalid, math.nan)
        soft_cond = soft_cond.masked_fill(invalid, math.nan)
    out = logits.dtype
    return b.to(out), soft.to(out), soft_cond.to(out)


def conditional_noise(logits, categorical, generator=None):
    """The two independent noises the relaxations draw, in the math type."""
    draw = gumbel_noise if categorical else logistic_noise
    shape, dtype, device = logits.shape, logits.dtype, logits.device
    return draw(shape, dtype, device, generator), draw(shape, dtype, device, generator)


def conditional_relaxation(logits, tau=1.0, *, categorical=False, dim=-1, generator=None):
    """Same contract as gradext.conditional_relaxation."""
    noise, cond_noise = conditional_noise(logits, categorical, generator)
    return relaxations_from_noise(logits, noise, cond_noise, tau, categorical, dim)

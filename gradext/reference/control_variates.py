"""REBAR and RELAX in plain PyTorch (Tucker et al. 2017; Grathwohl et al. 2018): the surrogate
that gradext.rebar / gradext.relax build on the fused conditional_relaxation, here on any
sampler of (b, soft, soft_cond), and the same estimators on the pure-PyTorch one (the fallback's
and the demo's plain-PyTorch baseline).

The estimator, for b ~ p(b | theta), z the relaxation's pre-activation of b's noise, z_tilde ~
p(z | b) and a control variate c:

    g = [f(b) - c(z_tilde)] d log p(b) / d theta + d c(z) / d theta - d c(z_tilde) / d theta

unbiased for d E[f(b)] / d theta whatever c is (z and z_tilde have the same marginal). As a
surrogate: f(b) plus terms that are zero in value, whose gradient in the logits is g, and whose
first derivative in f's and c's parameters is exactly zero (each term subtracts its own copy on
detached inputs), while g stays a differentiable function of c's parameters (and of REBAR's eta
and tau) for variance tuning.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gradext.reference.conditional_relaxation import conditional_relaxation


def surrogate(op, sample, f, logits, control_variate, tau, categorical, dim, generator):
    """The estimate of `op` (error messages), with `sample(logits, tau, categorical=, dim=,
    generator=)` returning (b, soft, soft_cond)."""
    b, soft, soft_cond = sample(logits, tau, categorical=categorical, dim=dim, generator=generator)
    value = f(b)
    _check_output(op, value, logits, categorical, dim)
    log_prob = log_prob_of_own_latents(logits, b, categorical, dim, value.dim())

    def cv(relaxed):
        out = control_variate(relaxed)
        if not isinstance(out, torch.Tensor) or out.shape != value.shape:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(
                f"{op}: control_variate must return f's output shape {tuple(value.shape)}, "
                f"got {got}"
            )
        return out

    # The score term, its multiplier differentiable in c's parameters only; c(z) - c(z_tilde),
    # each minus its value on a detached input, so that only the logits see it.
    multiplier = value.detach() - cv(soft_cond.detach())
    score = multiplier * (log_prob - log_prob.detach())
    pathwise = cv(soft) - cv(soft.detach()) - cv(soft_cond) + cv(soft_cond.detach())
    return value + score + pathwise


def _check_output(op, value, logits, categorical, dim):
    """f's values: a tensor whose shape leads the logits' (their batch dims if categorical)."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{op}: f must return a tensor, got {type(value).__name__}")
    batch_shape = logits.movedim(dim, -1).shape[:-1] if categorical else logits.shape
    if tuple(value.shape) != tuple(batch_shape[: value.dim()]):
        raise ValueError(
            f"{op}: f must return values of a leading part of the logits' "
            f"{'batch ' if categorical else ''}shape {tuple(batch_shape)}, got shape "
            f"{tuple(value.shape)}"
        )


def log_prob_of_own_latents(logits, b, categorical, dim, value_dim):
    """log p(b | logits), summed over the latent dims past f's output rank."""
    if categorical:
        index = b.argmax(dim, keepdim=True)
        # gather, not b * log_softmax: masked (-inf) categories would give 0 * -inf.
        per_variable = torch.log_softmax(logits, dim).gather(dim, index).squeeze(dim)
        per_variable = per_variable.masked_fill(b.isnan().any(dim), float("nan"))
    else:
        per_variable = -F.binary_cross_entropy_with_logits(logits, b, reduction="none")
    trailing = tuple(range(value_dim, per_variable.dim()))
    return per_variable.sum(trailing) if trailing else per_variable


def estimator_variance(estimate, logits):
    """(g detached, sum(g^2)) for g = d estimate.sum() / d logits: gradext.estimator_variance."""
    if not isinstance(estimate, torch.Tensor) or not estimate.requires_grad:
        raise ValueError(
            "estimator_variance: estimate must be the tensor rebar or relax returned (one "
            "that requires grad)"
        )
    (g,) = torch.autograd.grad(estimate.sum(), logits, create_graph=True, retain_graph=True)
    return g.detach(), (g * g).sum()


def variance_loss(estimate, logits, parameters):
    """A zero-valued loss term whose gradient in `parameters` is d sum(g^2) / d parameter and
    whose gradient in everything else is zero: gradext.variance_loss."""
    params = [p for p in parameters if p.requires_grad]
    if not params:
        raise ValueError(
            "variance_loss: parameters must hold at least one tensor that requires grad"
        )
    _, variance = estimator_variance(estimate, logits)
    grads = torch.autograd.grad(variance, params, retain_graph=True, allow_unused=True)
    term = sum((p * g).sum() for p, g in zip(params, grads) if g is not None)
    if not isinstance(term, torch.Tensor):  # no parameter reaches the variance
        return variance.new_zeros(())
    return term - term.detach()


def relax(f, logits, control_variate, tau=1.0, *, categorical=False, dim=-1, generator=None):
    """Same contract as gradext.relax, on the pure-PyTorch conditional relaxation."""
    return surrogate("relax", _sample, f, logits, control_variate, tau, categorical, dim, generator)


def rebar(f, logits, tau=1.0, eta=1.0, *, categorical=False, dim=-1, generator=None):
    """Same contract as gradext.rebar, on the pure-PyTorch conditional relaxation."""
    return surrogate(
        "rebar", _sample, f, logits, lambda z: eta * f(z), tau, categorical, dim, generator
    )


def _sample(logits, tau, *, categorical, dim, generator):
    return conditional_relaxation(
        logits, tau, categorical=categorical, dim=dim, generator=generator
    )

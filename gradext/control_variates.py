"""REBAR and RELAX: unbiased, low-variance gradients for discrete latents that use a continuous
relaxation as a control variate (Tucker, Mnih, Maddison, Lawson, Sohl-Dickstein 2017; Grathwohl,
Choi, Wu, Roeder, Duvenaud 2018), on the fused conditional_relaxation.

For b ~ p(b | theta) with logits theta, z the relaxation's pre-activation of b's noise and
z_tilde ~ p(z | b) (gradext.conditional_relaxation), and a control variate c:

    g = [f(b) - c(z_tilde)] d log p(b) / d theta + d c(z) / d theta - d c(z_tilde) / d theta

is unbiased for d E[f(b)] / d theta whatever c is (z and z_tilde have the same marginal), and
has low variance when c(z) tracks f. RELAX learns c; REBAR takes c(z) = eta f(relax(z, tau)).

Each estimator is returned as a surrogate tensor: its value is f(b), its gradient in the logits
is g, and its gradient in f's own parameters is the pathwise d f(b) (what a decoder trains on).
Every term added to f(b) is zero in value and has zero first derivative in f's and the control
variate's parameters (and in eta), so `estimate.sum().backward()` puts exactly g into the
encoder and d f(b) into the decoder, while g itself, d estimate / d logits, stays a
differentiable function of the control variate, eta and tau: `estimator_variance` minimizes
its variance, as both papers do.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import torch
import torch.nn.functional as F

from gradext import _validation
from gradext.conditional_relaxation import conditional_relaxation

__all__ = ["estimator_variance", "rebar", "relax"]


def relax(
    f: Callable[[torch.Tensor], torch.Tensor],
    logits: torch.Tensor,
    control_variate: Callable[[torch.Tensor], torch.Tensor],
    tau: float | torch.Tensor = 1.0,
    *,
    categorical: bool = False,
    dim: int = -1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The RELAX estimator of d E[f(b)] / d logits as a surrogate tensor.

    Args:
        f: maps a latent of the logits' shape (the discrete sample b) to values whose shape is a
            leading part of the logits' shape: one value per datapoint (``[B]`` for logits
            ``[B, D]``), per element, or a scalar for one datapoint. Each value is paired with
            the log-probability of its own latents, summed over the remaining dims.
        logits: Bernoulli logits, or categorical logits along ``dim`` (``categorical=True``).
        control_variate: c, a callable (an nn.Module, say) on a relaxed latent (the logits'
            shape, values in (0, 1)) with f's output shape.
        tau: the relaxation's temperature (a number, or a tensor that requires grad to tune it).
        generator: the ``torch.Generator`` of the noise.

    Returns:
        A tensor of f's output shape: the value f(b), the gradient RELAX's estimator in the
        logits (unbiased for any tau and c) and the pathwise gradient of f(b) in f's parameters.
        ``estimator_variance(estimate, logits)`` gives the variance to train c on.
    """
    op = "relax"
    _check_callable(op, "f", f)
    _check_callable(op, "control_variate", control_variate)
    return _estimate(op, f, logits, control_variate, tau, categorical, dim, generator)


def rebar(
    f: Callable[[torch.Tensor], torch.Tensor],
    logits: torch.Tensor,
    tau: float | torch.Tensor = 1.0,
    eta: float | torch.Tensor = 1.0,
    *,
    categorical: bool = False,
    dim: int = -1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The REBAR estimator: RELAX with the control variate c(z) = eta f(relaxed z), f evaluated
    on the relaxed sample at temperature tau. eta = 0 is REINFORCE (the score function of f(b)
    alone); tau and eta may be tensors that require grad, to be tuned by
    ``estimator_variance``. Arguments and result as ``relax``.
    """
    op = "rebar"
    _check_callable(op, "f", f)
    if not isinstance(eta, torch.Tensor) and (
        isinstance(eta, bool) or not isinstance(eta, numbers.Real)
    ):
        raise TypeError(f"rebar: eta must be a number or a tensor, got {type(eta).__name__}")

    def control_variate(relaxed):
        return eta * f(relaxed)

    return _estimate(op, f, logits, control_variate, tau, categorical, dim, generator)


def estimator_variance(
    estimate: torch.Tensor, logits: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The single-sample gradient estimate g = d estimate.sum() / d logits and sum(g^2), the
    latter differentiable in the estimator's tunable parts (RELAX's control variate, REBAR's
    eta and tau when they require grad). The estimators are unbiased, so E[g] does not depend on
    them and minimizing E[sum(g^2)] minimizes the variance (both papers' objective)::

        estimate = gradext.relax(f, logits, cv)
        estimate.sum().backward(retain_graph=True, inputs=model_parameters)  # g into the encoder
        g, variance = gradext.estimator_variance(estimate, logits)
        variance.backward(inputs=list(cv.parameters()))  # d Var / d phi

    Returns (g detached, sum(g^2))."""
    if not isinstance(estimate, torch.Tensor) or not estimate.requires_grad:
        raise ValueError(
            "estimator_variance: estimate must be the tensor rebar or relax returned (one "
            "that requires grad)"
        )
    (g,) = torch.autograd.grad(estimate.sum(), logits, create_graph=True, retain_graph=True)
    return g.detach(), (g * g).sum()


# --- the estimator ----------------------------------------------------------------------------


def _check_callable(op, name, value):
    if not callable(value):
        raise TypeError(f"{op}: {name} must be callable, got {type(value).__name__}")


def _estimate(op, f, logits, control_variate, tau, categorical, dim, generator):
    _validation.check_floating(op, "logits", logits)
    categorical = _validation.as_bool(op, "categorical", categorical)
    if categorical and logits.dim() >= 1:
        dim = _validation.as_dim(op, dim, "logits", logits)
    b, soft, soft_cond = conditional_relaxation(
        logits, tau, categorical=categorical, dim=dim, generator=generator
    )
    value = f(b)
    _check_output(op, "f", value, logits, categorical, dim)
    log_prob = _log_prob_of_own_latents(logits, b, categorical, dim, value.dim())

    def cv(relaxed):
        out = control_variate(relaxed)
        if not isinstance(out, torch.Tensor) or out.shape != value.shape:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(
                f"{op}: control_variate must return f's output shape {tuple(value.shape)}, "
                f"got {got}"
            )
        return out

    # Zero-valued terms whose gradient in the logits is the estimator's (see the module doc):
    # the score term with its multiplier differentiable in c's parameters only, and c(z) -
    # c(z_tilde) with a detached copy of each subtracted, so that only the logits see it.
    multiplier = value.detach() - cv(soft_cond.detach())
    score = multiplier * (log_prob - log_prob.detach())
    pathwise = cv(soft) - cv(soft.detach()) - cv(soft_cond) + cv(soft_cond.detach())
    return value + score + pathwise


def _check_output(op, name, value, logits, categorical, dim):
    """f's values: a tensor whose shape leads the logits' (batch dims only for categorical)."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{op}: {name} must return a tensor, got {type(value).__name__}")
    batch_shape = logits.shape
    if categorical:
        batch_shape = logits.movedim(dim, -1).shape[:-1]
    if tuple(value.shape) != tuple(batch_shape[: value.dim()]):
        raise ValueError(
            f"{op}: {name} must return values of a leading part of the logits' "
            f"{'batch ' if categorical else ''}shape {tuple(batch_shape)}, got shape "
            f"{tuple(value.shape)}"
        )


def _log_prob_of_own_latents(logits, b, categorical, dim, value_dim):
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

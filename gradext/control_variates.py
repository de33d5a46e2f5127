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
differentiable function of the control variate, eta and tau: `variance_loss` adds their
variance-minimizing update to the same backward, as both papers train them, and
`estimator_variance` measures it. The construction is gradext/reference/control_variates.py's,
here on the fused sampler.

LAX (RELAX for continuous latents, Grathwohl et al. section 3.3) needs no conditional sample:
with a reparameterized z it is f(z) with c(z)'s score and pathwise terms, a few lines over
gaussian_rsample; it is not provided as an op here.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import torch

from gradext import _validation
from gradext.conditional_relaxation import conditional_relaxation
from gradext.reference import control_variates as _surrogates

__all__ = ["estimator_variance", "rebar", "relax", "variance_loss"]


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
        A tensor of f's output shape whose value is f(b), whose gradient in the logits is
        RELAX's estimator (unbiased for any tau and c), and whose gradient in f's parameters is
        the pathwise d f(b). ``variance_loss(estimate, logits, c.parameters())`` trains c.
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
    """The single-sample gradient estimate g = d estimate.sum() / d logits, detached, and
    sum(g^2), differentiable in the estimator's tunable parts (RELAX's control variate, REBAR's
    eta and tau when they require grad). The estimators are unbiased, so E[g] does not depend on
    them and the gradient of E[sum(g^2)] is that of the variance, which both papers minimize."""
    return _surrogates.estimator_variance(estimate, logits)


def variance_loss(estimate: torch.Tensor, logits: torch.Tensor, parameters) -> torch.Tensor:
    """A zero-valued term to add to the loss a training step minimizes: its gradient in
    `parameters` (RELAX's control variate, REBAR's eta) is d sum(g^2) / d parameter, the
    variance-minimizing update of both papers, and its gradient in everything else is zero, so
    one backward trains the model on g and the tuned parts on the variance::

        estimate = gradext.relax(f, logits, cv)  # [B]
        loss = -estimate.mean() + gradext.variance_loss(estimate, logits, cv.parameters())
        loss.backward()
        optimizer.step()  # encoder: RELAX's estimate; decoder: d f(b); cv: d Var / d phi
    """
    return _surrogates.variance_loss(estimate, logits, parameters)


# --- argument checks --------------------------------------------------------------------------


def _check_callable(op, name, value):
    if not callable(value):
        raise TypeError(f"{op}: {name} must be callable, got {type(value).__name__}")


def _estimate(op, f, logits, control_variate, tau, categorical, dim, generator):
    _validation.check_floating(op, "logits", logits)
    categorical = _validation.as_bool(op, "categorical", categorical)
    if categorical and logits.dim() >= 1:
        dim = _validation.as_dim(op, dim, "logits", logits)
    return _surrogates.surrogate(
        op, conditional_relaxation, f, logits, control_variate, tau, categorical, dim, generator
    )

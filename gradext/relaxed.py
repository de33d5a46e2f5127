"""Relaxation gradients for discrete latents: Gumbel-Softmax (Concrete) and Gumbel-sigmoid
(binary Concrete), soft or straight-through hard."""

from __future__ import annotations

import math

import torch

from gradext import _extension, _ops, _validation
from gradext import reference


def _check_tau(op: str, tau) -> float:
    """tau's value as a float. Like torch.nn.functional.gumbel_softmax, a one-element tensor
    is accepted too (a temperature schedule, or a learned temperature that requires grad)."""
    if isinstance(tau, torch.Tensor):
        if tau.numel() != 1:
            raise TypeError(f"{op}: a tensor tau must hold one number, got shape "
                            f"{tuple(tau.shape)}")
        tau = tau.detach().item()
    if isinstance(tau, bool) or not isinstance(tau, (int, float)):
        raise TypeError(f"{op}: tau must be a number, got {type(tau).__name__}")
    if not (math.isfinite(tau) and tau > 0):
        raise ValueError(f"{op}: tau must be a finite number > 0, got {tau}")
    return float(tau)


def _learned_temperature(tau) -> bool:
    """The kernels take tau as a number, so a tau that requires grad (a learned temperature)
    runs the pure-PyTorch path, which differentiates with respect to it at every order."""
    return isinstance(tau, torch.Tensor) and tau.requires_grad


def _check_hard(op: str, hard) -> None:
    if not isinstance(hard, bool):
        raise TypeError(f"{op}: hard must be a bool, got {type(hard).__name__}")


def gumbel_softmax(
    logits: torch.Tensor,
    tau: float = 1.0,
    hard: bool = False,
    eps: float = 1e-10,
    dim: int = -1,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Drop-in for torch.nn.functional.gumbel_softmax: same signature and semantics (``eps`` is
    accepted and ignored, as there), plus ``generator=``.

    Soft: y = softmax((logits + g) / tau, dim), g ~ Gumbel(0, 1). Hard (straight-through): the
    forward value is the exact one-hot of argmax(logits + g) (every element exactly 0.0 or 1.0;
    argmax(logits + g) is an exact Categorical(softmax(logits)) sample), the gradient is the soft
    sample's, d logits = y * (grad - sum(grad * y, dim)) / tau. Never NaN or inf from the noise;
    logits of -inf (masked categories) get probability 0 and are never selected while one
    category of the slice is finite. tau <= 0 is a ValueError (PyTorch returns NaN). tau may be a
    number or, as in PyTorch, a one-element tensor. Numbers and tensors without grad go through
    the kernels; a learned temperature (a tensor that requires grad) runs the pure-PyTorch path,
    which differentiates with respect to it.

    The kernels fuse noise, softmax, argmax and one-hot in one pass per row and keep one tensor
    of the logits' size for backward (the soft sample). Inside torch.compile use the default
    generator (dynamo cannot trace torch.Generator objects).
    """
    op = "gumbel_softmax"
    _validation.check_floating(op, "logits", logits)
    tau_value = _check_tau(op, tau)
    _check_hard(op, hard)
    if logits.dim() == 0:
        raise ValueError(f"{op}: logits must have at least one dimension (the categories)")
    if isinstance(dim, bool) or not isinstance(dim, int) or not -logits.dim() <= dim < logits.dim():
        raise IndexError(
            f"{op}: dim {dim} is out of range for logits with {logits.dim()} dimensions"
        )
    _validation.check_generator(op, generator, logits.device)
    if _learned_temperature(tau):
        return reference.gumbel_softmax(logits, tau, hard, eps, dim, generator=generator)
    if not _extension.uses_kernels(logits.device):
        return reference.gumbel_softmax(logits, tau_value, hard, eps, dim, generator=generator)
    if dim % logits.dim() == logits.dim() - 1:  # the common case; a view costs microseconds
        y, _ = _ops.relaxed.gumbel_softmax(logits, tau_value, hard, generator=generator)
        return y
    rows = logits.movedim(dim, -1)  # the kernels work along the last (contiguous) dimension
    y, _ = _ops.relaxed.gumbel_softmax(rows, tau_value, hard, generator=generator)
    return y.movedim(-1, dim)


def gumbel_sigmoid(
    logits: torch.Tensor,
    tau: float = 1.0,
    hard: bool = False,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The binary Concrete (relaxed Bernoulli) sample y = sigmoid((logits + L) / tau), with
    logistic noise L = log u - log(1 - u). Hard: exact 0/1 (1 where logits + L > 0, an exact
    Bernoulli(sigmoid(logits)) sample) with the straight-through gradient of the soft sample,
    d logits = grad * y * (1 - y) / tau. One fused elementwise kernel each way. tau as in
    gumbel_softmax (a number or a one-element tensor; a learned one runs the pure-PyTorch path)."""
    op = "gumbel_sigmoid"
    _validation.check_floating(op, "logits", logits)
    tau_value = _check_tau(op, tau)
    _check_hard(op, hard)
    _validation.check_generator(op, generator, logits.device)
    if _learned_temperature(tau):
        return reference.gumbel_sigmoid(logits, tau, hard, generator=generator)
    if not _extension.uses_kernels(logits.device):
        return reference.gumbel_sigmoid(logits, tau_value, hard, generator=generator)
    y, _ = _ops.relaxed.gumbel_sigmoid(logits, tau_value, hard, generator=generator)
    return y

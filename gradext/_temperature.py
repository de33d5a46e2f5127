"""The temperature argument of the relaxation ops (gumbel_softmax, gumbel_sigmoid,
conditional_relaxation): how a number or a one-element tensor becomes the float64 CPU tensor the
dispatcher ops take (csrc/ops/relaxed.h: tau_value), and when a learned temperature sends a call
to the pure-PyTorch path."""

from __future__ import annotations

import functools
import math
import numbers

import numpy
import torch


def check_tau(op: str, tau) -> float:
    """tau's value as a float. Like torch.nn.functional.gumbel_softmax, a one-element tensor
    is accepted too (a temperature schedule, or a learned temperature that requires grad)."""
    if isinstance(tau, torch.Tensor):
        if tau.numel() != 1:
            raise TypeError(
                f"{op}: a tensor tau must hold one number, got shape {tuple(tau.shape)}"
            )
        tau = tau.detach().item()
    if isinstance(tau, (bool, numpy.bool_)) or not isinstance(tau, numbers.Real):
        raise TypeError(f"{op}: tau must be a number, got {type(tau).__name__}")
    if torch.compiler.is_compiling():
        # torch.compile traces a changing tau (an annealed temperature) symbolically: testing
        # its value here would break the graph or specialize it on each value. The op checks it
        # when it runs (the same ValueError for tau <= 0, NaN or inf).
        return tau
    if not (math.isfinite(tau) and tau > 0):
        raise ValueError(f"{op}: tau must be a finite number > 0, got {tau}")
    return float(tau)


def tau_tensor(tau) -> torch.Tensor:
    """tau as the ops take it: a float64 0-dim tensor on the CPU (csrc/ops/relaxed.h). Under
    torch.compile it is computed from the traced float, so a changing tau (an annealed
    temperature) is a graph input rather than a constant each value recompiles for (a float
    argument of a custom op, or torch.tensor(tau), is specialized). In eager mode the tensor of
    each value is made once."""
    if torch.compiler.is_compiling():
        return torch.ones((), dtype=torch.float64) * tau
    return _cached_tau_tensor(tau)


@functools.lru_cache(maxsize=1024)
def _cached_tau_tensor(tau: float) -> torch.Tensor:
    # A normal tensor even when first asked for under inference_mode: autograd saves it.
    with torch.inference_mode(False):
        return torch.tensor(tau, dtype=torch.float64)


def learned_temperature(tau) -> bool:
    """The kernels take tau as a number, so a tau that requires grad (a learned temperature)
    runs the pure-PyTorch path, which differentiates with respect to it at every order."""
    return isinstance(tau, torch.Tensor) and tau.requires_grad

"""Pathwise (reparameterization) gradients for Gaussian latents."""

from __future__ import annotations

import torch

from gradext import _extension, _ops, _validation
from gradext import reference

_OP = "gaussian_rsample"


def gaussian_rsample(
    mu: torch.Tensor,
    logvar: torch.Tensor,
    num_samples: int | None = None,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Reparameterized samples z = mu + exp(logvar / 2) * eps, eps ~ N(0, I).

    Args:
        mu: mean, any floating dtype and shape.
        logvar: log-variance, broadcastable against ``mu`` (e.g. a per-dimension ``[D]``
            log-variance with ``mu`` of shape ``[B, D]``).
        num_samples: ``None`` for one sample of shape ``broadcast(mu, logvar)``; an int K >= 1
            for K independent samples stacked along a new leading dimension (IWAE).
        generator: the ``torch.Generator`` to draw from; ``None`` uses the device's default
            generator, so ``torch.manual_seed`` reproduces results.

    Returns:
        z of shape ``(num_samples, *broadcast_shape)`` or ``broadcast_shape``, in the promoted
        dtype of ``mu`` and ``logvar``. Gradients flow to ``mu`` (the sum over samples of the
        incoming gradient) and ``logvar`` (the sum of grad * eps * exp(logvar / 2) / 2), each in
        its own shape and dtype.

    With the compiled extension the forward is one fused kernel and the backward another that
    recomputes eps from the saved Philox (seed, offset): autograd keeps only ``logvar`` and two
    integers, whatever ``num_samples`` is. The noise of a given (seed, offset) is the same on
    the CPU and the GPU and for any number of threads.
    """
    _validation.check_floating(_OP, "mu", mu)
    _validation.check_floating(_OP, "logvar", logvar)
    _validation.check_same_device(_OP, mu=mu, logvar=logvar)
    _validation.check_broadcastable(_OP, mu=mu, logvar=logvar)
    _validation.check_optional_count(_OP, "num_samples", num_samples)
    _validation.check_generator(_OP, generator, mu.device)
    if _extension.uses_kernels(mu.device):
        z, _ = _ops.gaussian.gaussian_rsample(mu, logvar, num_samples, generator=generator)
        return z
    return reference.gaussian_rsample(mu, logvar, num_samples, generator=generator)

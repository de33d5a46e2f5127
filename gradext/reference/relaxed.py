"""Gumbel-Softmax and Gumbel-sigmoid (binary Concrete) in plain PyTorch.

Unlike torch.nn.functional.gumbel_softmax, the hard sample is an exact one-hot (the
straight-through gradient is attached by a small autograd Function instead of
``y_hard - y_soft.detach() + y_soft``, whose values are not exactly 0 and 1), the uniforms stay
strictly inside (0, 1) so no noise value is ever inf or NaN, and ``generator=`` is honoured.
"""

from __future__ import annotations

import math

import torch


class _StraightThrough(torch.autograd.Function):
    """Forward: the hard value. Backward: the gradient goes to the soft value unchanged."""

    @staticmethod
    def forward(ctx, y_soft, y_hard):
        return y_hard

    @staticmethod
    def backward(ctx, grad):
        return grad, None


class _StraightThroughForTransforms(torch.autograd.Function):
    """The same in the style torch.func requires (setup_context apart), which costs an
    inspect.signature per apply in plain eager mode: used only under torch.func transforms."""

    @staticmethod
    def forward(y_soft, y_hard):
        return y_hard.clone()

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    def backward(ctx, grad):
        return grad, None


def _straight_through(y_soft, y_hard):
    if torch._C._are_functorch_transforms_active():
        return _StraightThroughForTransforms.apply(y_soft, y_hard)
    return _StraightThrough.apply(y_soft, y_hard)


def _open_uniform(shape, dtype, device, generator):
    """Uniforms strictly inside (0, 1), in float32 for the half types (their math type)."""
    math_dtype = torch.float64 if dtype == torch.float64 else torch.float32
    # generator=None is left out: torch.rand's generator overload rejects the symbolic shapes
    # of a dynamic-shape torch.compile.
    extra = {} if generator is None else {"generator": generator}
    u = torch.rand(shape, dtype=math_dtype, device=device, **extra)
    tiny = 2.0**-33 if math_dtype == torch.float64 else 2.0**-24
    return u.clamp_(tiny, 1.0 - tiny)


def gumbel_noise(shape, dtype, device, generator=None) -> torch.Tensor:
    """Gumbel noise in the math type, from float64 uniforms: a float32 uniform has 24 bits near
    1, where the largest Gumbel values come from, and categories of probability 1e-8 would be
    drawn too rarely (the kernels keep 32 bits there: csrc/common/random_transforms.h). The
    uniforms are clamped to the kernels' range, [2^-33, 1 - 2^-33]."""
    extra = {} if generator is None else {"generator": generator}
    u = torch.rand(shape, dtype=torch.float64, device=device, **extra)
    u = u.clamp_(2.0**-33, 1.0 - 2.0**-33)
    math_dtype = torch.float64 if dtype == torch.float64 else torch.float32
    return (-torch.log(-torch.log(u))).to(math_dtype)


def logistic_noise(shape, dtype, device, generator=None) -> torch.Tensor:
    u = _open_uniform(shape, dtype, device, generator)
    return torch.log(u) - torch.log1p(-u)


def saturated_inv_tau(tau, math_dtype):
    """1 / tau, saturated at the math type's largest finite value (as the kernels do): a tau so
    small that 1 / tau overflows gives the tau -> 0 limit, not inf * 0 = NaN. A tensor tau (a
    learned temperature) stays differentiable."""
    largest = torch.finfo(math_dtype).max
    if isinstance(tau, torch.Tensor):
        return (1.0 / tau.to(math_dtype)).clamp(max=largest)
    inv_tau = 1.0 / tau
    return inv_tau if inv_tau < largest else largest


def gumbel_softmax_from_noise(logits, gumbels, tau=1.0, hard=False, dim=-1):
    """softmax((logits + gumbels) / tau) along dim; hard: exact one-hot of the argmax with the
    soft sample's gradient. Math in float32 (float64 for float64 logits).

    A slice whose logits hold a NaN, a +inf or no finite value has no softmax: its soft sample
    is NaN (as torch.softmax's) and so is its hard sample, in every position (as
    F.gumbel_softmax's), on the kernels too (csrc/common/invalid_inputs.h)."""
    math_dtype = torch.promote_types(logits.dtype, torch.float32)
    scores = logits.to(math_dtype) + gumbels.to(math_dtype)
    # (s - max s) / tau as the kernels compute it: the same softmax, and no overflow at tiny tau.
    shifted = scores - scores.detach().amax(dim=dim, keepdim=True)
    y_soft = torch.softmax(shifted * saturated_inv_tau(tau, math_dtype), dim=dim).to(logits.dtype)
    if not hard:
        return y_soft
    index = scores.argmax(dim=dim, keepdim=True)
    y_hard = torch.zeros_like(y_soft).scatter_(dim, index, 1.0)
    invalid = y_soft.detach().isnan().any(dim=dim, keepdim=True)
    y_hard = y_hard.masked_fill(invalid, math.nan)
    return _straight_through(y_soft, y_hard)


def gumbel_softmax(logits, tau=1.0, hard=False, eps=1e-10, dim=-1, *, generator=None):
    """Same contract as gradext.gumbel_softmax (eps is accepted and ignored, as in PyTorch)."""
    gumbels = gumbel_noise(logits.shape, logits.dtype, logits.device, generator)
    return gumbel_softmax_from_noise(logits, gumbels, tau, hard, dim)


def gumbel_sigmoid_from_noise(logits, noise, tau=1.0, hard=False):
    math_dtype = torch.promote_types(logits.dtype, torch.float32)
    scores = logits.to(math_dtype) + noise.to(math_dtype)
    y_soft = torch.sigmoid(scores * saturated_inv_tau(tau, math_dtype)).to(logits.dtype)
    if not hard:
        return y_soft
    y_hard = (scores > 0).to(logits.dtype).masked_fill(scores.isnan(), math.nan)  # NaN stays NaN
    return _straight_through(y_soft, y_hard)


def gumbel_sigmoid(logits, tau=1.0, hard=False, *, generator=None):
    """Same contract as gradext.gumbel_sigmoid."""
    noise = logistic_noise(logits.shape, logits.dtype, logits.device, generator)
    return gumbel_sigmoid_from_noise(logits, noise, tau, hard)

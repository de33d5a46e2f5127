"""The Dirichlet family: pathwise gradients of simplex latents (and of Beta ones, the two-entry
case) by implicit reparameterization.

    x = g / sum_j g_j,  g_i ~ Gamma(alpha_i, 1)  (exactly Dirichlet(alpha); no relaxation)
    d x_j / d alpha_i = x_j (delta_ij - x_i) d log g_i / d alpha_i

Each entry's Gamma draw comes from its own Philox sub-stream and is kept as its log, so the
sample is normalized in log space: tiny concentrations (whose Gamma draws underflow every float
type) give points of the simplex that sum to 1, never NaN. The backward reads the saved sample
and log-Gammas (no rejection loop runs again) and evaluates d log g / d alpha in float64
(csrc/common/gamma_math.h: standard_gamma_dlog_dalpha).

Read top to bottom: the public functions; the fake kernels of the three dispatcher ops
(``dirichlet_rsample``, its seeded twin ``_dirichlet_rsample_seeded`` and the fused row-wise
``_dirichlet_rsample_backward``); the autograd formula of the sampling ops; the derivative of the
fused backward (not implemented: it raises); the vmap rules; the registrations. C++:
csrc/ops/dirichlet.{h,cpp}, csrc/ops/dirichlet_autograd.cpp, csrc/ops/cpu/dirichlet_kernel.cpp,
csrc/ops/cuda/dirichlet_kernel.cu, csrc/common/dirichlet_row.h. Fallback:
gradext/reference/dirichlet.py.
"""

from __future__ import annotations

import math
import numbers

import torch

from gradext import _extension, _validation, reference
from gradext._custom_op import (
    batch_first,
    batched_param,
    check_vmap_randomness,
    register_fake,
    with_autograd,
)
from gradext.reference.gamma import check_gamma_parameter


def dirichlet_rsample(
    concentration: torch.Tensor,
    num_samples: int | tuple[int, ...] | None = None,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Reparameterized samples x ~ Dirichlet(concentration) along the last dimension.

    Args:
        concentration: alpha > 0, any floating dtype, shape ``(..., C)`` with C >= 2 categories.
        num_samples: ``None`` for one sample of concentration's shape; an int K >= 1 for K
            independent samples stacked along a new leading dimension. A sample_shape tuple or
            ``torch.Size`` works as in torch.distributions: ``()`` is one sample, ``(2, 3)``
            six on two leading dims.
        generator: the ``torch.Generator`` to draw from; ``None`` uses the device's default.

    Returns:
        x in concentration's dtype, every entry strictly between 0 and 1 (entries that round
        below the dtype's smallest positive value are set to it, those that round to 1 to its
        largest value below 1) and each row summing to 1 within rounding.
        Gradients flow to ``concentration`` by implicit reparameterization through the
        normalized Gamma draws, summed to its shape. Second derivatives are not implemented (a
        second backward raises NotImplementedError).

    A concentration that is not positive and finite raises a ValueError on the CPU and stops the
    kernel with a device-side assertion on a GPU (no host synchronization).
    """
    op = "dirichlet_rsample"
    _validation.check_floating(op, "concentration", concentration)
    _check_categories(op, concentration)
    _validation.check_no_forward_ad(op, concentration)
    num_samples, sample_dims = _validation.sample_count(op, num_samples)
    _validation.check_generator(op, generator, concentration.device)
    if _extension.uses_kernels(concentration.device):
        x, _ = _dirichlet_rsample(concentration, num_samples, generator=generator)
    else:
        x = reference.dirichlet_rsample(concentration, num_samples, generator=generator)
    return _validation.with_sample_dims(x, sample_dims)


def beta_rsample(
    concentration1: torch.Tensor | float,
    concentration0: torch.Tensor | float,
    num_samples: int | tuple[int, ...] | None = None,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Reparameterized samples x ~ Beta(concentration1, concentration0) (mean c1 / (c1 + c0)):
    the first entry of a two-category Dirichlet sample, x = g1 / (g1 + g0), through the same
    fused kernels. The parameters broadcast against each other (a number is a constant);
    gradients flow to both. Invalid values raise a ValueError naming the argument on the CPU (a
    device-side assertion on a GPU, as dirichlet_rsample's)."""
    op = "beta_rsample"
    c1, c0 = _beta_parameters(op, concentration1, concentration0)
    _validation.check_same_device(op, concentration1=c1, concentration0=c0)
    _validation.check_broadcastable(op, concentration1=c1, concentration0=c0)
    dtype = torch.promote_types(c1.dtype, c0.dtype)
    stacked = torch.stack(torch.broadcast_tensors(c1.to(dtype), c0.to(dtype)), dim=-1)
    try:
        return dirichlet_rsample(stacked, num_samples, generator=generator)[..., 0]
    except ValueError as error:
        # The Dirichlet kernel or fallback found an invalid value (without a pass of its own
        # over the parameters: none is made on the valid path). Name the argument it came from.
        if "concentration must be positive and finite" not in str(error):
            raise
        check_gamma_parameter(op, "concentration1", c1.detach())
        check_gamma_parameter(op, "concentration0", c0.detach())
        raise


def _check_categories(op: str, concentration: torch.Tensor) -> None:
    if _validation.tracing():
        return
    if concentration.dim() == 0 or concentration.shape[-1] < 2:
        raise ValueError(
            f"{op}: concentration must have at least 2 categories along its last dimension "
            f"(the simplex), got shape {tuple(concentration.shape)}"
        )


def _beta_parameters(op: str, concentration1, concentration0):
    """Both parameters as tensors (a number takes the other's dtype and device)."""
    tensors = [t for t in (concentration1, concentration0) if isinstance(t, torch.Tensor)]
    for name, value in (("concentration1", concentration1), ("concentration0", concentration0)):
        if isinstance(value, torch.Tensor):
            _validation.check_floating(op, name, value)
            _validation.check_no_forward_ad(op, value)
        elif isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(
                f"{op}: {name} must be a tensor or a real number, got {type(value).__name__}"
            )
        elif not (value > 0 and math.isfinite(value)):
            raise ValueError(f"{op}: {name} must be positive and finite, got {value}")
    like = tensors[0] if tensors else torch.empty((), dtype=torch.get_default_dtype())

    def as_tensor(value):
        if isinstance(value, torch.Tensor):
            return value
        return torch.full((), float(value), dtype=like.dtype, device=like.device)

    return as_tensor(concentration1), as_tensor(concentration0)


# --- fake kernels ---------------------------------------------------------------------------


def _sample_and_log_gamma(concentration, num_samples):
    shape = concentration.shape if num_samples is None else (num_samples, *concentration.shape)
    log_dtype = torch.float64 if concentration.dtype == torch.float64 else torch.float32
    return concentration.new_empty(shape), concentration.new_empty(shape, dtype=log_dtype)


@register_fake("gradext::dirichlet_rsample")
def _dirichlet_rsample_fake(concentration, num_samples=None, *, generator=None):
    return _sample_and_log_gamma(concentration, num_samples)


@register_fake("gradext::_dirichlet_rsample_seeded")
def _dirichlet_rsample_seeded_fake(concentration, num_samples, seed, offset):
    return _sample_and_log_gamma(concentration, num_samples)


@register_fake("gradext::_dirichlet_rsample_backward")
def _dirichlet_rsample_backward_fake(grad, x, log_gamma, concentration):
    return x.new_empty(x.shape)


# --- autograd of the sampling ops (dirichlet_rsample, _seeded) ------------------------------
# Under torch.func transforms only: elsewhere the same formula runs in C++
# (csrc/ops/dirichlet_autograd.cpp), which torch.func refuses.


def _sample_setup_context(ctx, inputs, output, keyword_only_inputs=None):
    x, log_gamma = output
    # The backward reads the sample and its log-Gammas: no rejection loop is run again.
    ctx.save_for_backward(inputs[0], x, log_gamma)
    ctx.mark_non_differentiable(log_gamma)


def _sample_backward(ctx, grad_x, _grad_log_gamma):
    concentration, x, log_gamma = ctx.saved_tensors
    grad = _dirichlet_rsample_backward(grad_x, x, log_gamma, concentration)
    return (grad.sum_to_size(concentration.shape).to(concentration.dtype),)


# --- the derivative of the fused backward ---------------------------------------------------


def _backward_setup_context(ctx, inputs, output):
    pass


def _backward_derivative(ctx, grad_grad):
    raise NotImplementedError(
        "dirichlet_rsample: second derivatives are not implemented (they need the implicit "
        "gradient's own derivative in the concentration)"
    )


# --- vmap rules (randomness="different") ----------------------------------------------------


def _sample_vmap(info, in_dims, concentration, num_samples, generator=None):
    # The op on the batched concentration (its simplex stays last): every example gets its own
    # samples, those of the batched output (K, B, ...) (or (B, ...)).
    check_vmap_randomness(info, "dirichlet_rsample")
    concentration = batch_first(concentration, in_dims[0], info.batch_size)
    x, log_gamma = _dirichlet_rsample(concentration, num_samples, generator=generator)
    out_dim = 0 if num_samples is None else 1
    return (x, log_gamma), (out_dim, out_dim)


def _backward_vmap(info, in_dims, grad, x, log_gamma, concentration):
    # Rows over x's shape: grad, x and log_gamma batch-first (an unbatched one expanded: jacrev's
    # cotangents against one forward's sample), the concentration with singleton dimensions up
    # to x's rank so that it broadcasts per example.
    batch = info.batch_size
    rank = max(t.dim() - (d is not None) for t, d in zip((grad, x, log_gamma), in_dims[:3]))
    grad, x, log_gamma = (batch_first(t, d, batch) for t, d in zip((grad, x, log_gamma), in_dims))
    concentration = batched_param(concentration, in_dims[3], batch, rank, expand=False)
    return _dirichlet_rsample_backward(grad, x, log_gamma, concentration), 0


# --- registrations: each op's formulas, and the eager entries the code above calls ----------

# The sampling ops' autograd kernel is csrc/ops/dirichlet_autograd.cpp, the formula of
# _sample_backward; these formulas serve torch.func (see gradext/_custom_op.py).
_dirichlet_rsample = with_autograd(
    "gradext::dirichlet_rsample",
    _sample_setup_context,
    _sample_backward,
    _sample_vmap,
    autograd_in_cpp=True,
)
with_autograd(
    "gradext::_dirichlet_rsample_seeded",
    _sample_setup_context,
    _sample_backward,
    autograd_in_cpp=True,
)
_dirichlet_rsample_backward = with_autograd(
    "gradext::_dirichlet_rsample_backward",
    _backward_setup_context,
    _backward_derivative,
    _backward_vmap,
)

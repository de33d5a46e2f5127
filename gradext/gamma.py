"""The Gamma family: pathwise gradients of Gamma latents by implicit reparameterization.

    z ~ Gamma(concentration, rate),  z = standard / rate,  standard ~ Gamma(concentration, 1)
    dz/dconcentration = -(dP(concentration, standard)/dconcentration) / p(standard) / rate
    dz/drate = -z / rate

The forward draws each element from its own Philox sub-stream by Marsaglia and Tsang's
rejection sampler; the backward reads the saved samples (no rejection loop runs again) and
evaluates the implicit gradient in float64 (csrc/common/gamma_math.h; docs/design.md has its
accuracy).

Read top to bottom: the public function; the fake kernels of the three dispatcher ops
(``gamma_rsample``, its seeded twin ``_gamma_rsample_seeded`` and the fused, elementwise
``_gamma_rsample_backward``); the autograd formula of the sampling ops; the derivative of the
fused backward (double backward, with respect to everything but the concentration); the vmap
rules; the registrations. C++: csrc/ops/gamma.{h,cpp}, csrc/ops/gamma_autograd.cpp,
csrc/ops/cpu/gamma_kernel.cpp, csrc/ops/cuda/gamma_kernel.cu, csrc/common/gamma_*.h. Fallback:
gradext/reference/gamma.py.
"""

from __future__ import annotations

import torch

from gradext import _extension, _validation, reference
from gradext._custom_op import (
    batch_first,
    batched_param,
    check_vmap_randomness,
    example_rank,
    register_fake,
    two_parameter_sample,
    with_autograd,
)


def gamma_rsample(
    concentration: torch.Tensor,
    rate: torch.Tensor | float = 1.0,
    num_samples: int | tuple[int, ...] | None = None,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Reparameterized samples z ~ Gamma(concentration, rate) (shape-rate: mean
    concentration / rate).

    Args:
        concentration: the shape parameter alpha > 0, any floating dtype and shape.
        rate: the rate beta > 0, a tensor broadcastable against ``concentration`` or a number.
        num_samples: ``None`` for one sample of shape ``broadcast(concentration, rate)``; an int
            K >= 1 for K independent samples stacked along a new leading dimension.
            A sample_shape tuple or ``torch.Size`` works as in torch.distributions: ``()`` is
            one sample, ``(2, 3)`` six on two leading dims.
        generator: the ``torch.Generator`` to draw from; ``None`` uses the device's default
            generator, so ``torch.manual_seed`` reproduces results.

    Returns:
        z in the promoted dtype of the parameters, every value positive and finite (clamped into
        the dtype's normal range: most of Gamma(1e-3) lies below float32's smallest normal).
        Gradients flow to ``concentration`` by implicit reparameterization (Figurnov, Mohamed
        and Mnih 2018), accurate to float64 rounding at any concentration, and to ``rate``
        (-z / rate), each summed to its own shape and dtype.

    A concentration or rate that is not positive and finite raises a ValueError naming it on the
    CPU; on a GPU it stops the kernel with a device-side assertion (a host check would cost a
    synchronization per call). Second derivatives are supported with respect to the rate and
    through the incoming gradient, not with respect to the concentration (the implicit gradient's
    own derivative in concentration is not implemented).
    """
    op = "gamma_rsample"
    _validation.check_floating(op, "concentration", concentration)
    rate = _validation.positive_parameter(op, "rate", rate, concentration)
    _validation.check_same_device(op, concentration=concentration, rate=rate)
    _validation.check_no_forward_ad(op, concentration, rate)
    _validation.check_broadcastable(op, concentration=concentration, rate=rate)
    num_samples, sample_dims = _validation.sample_count(op, num_samples)
    _validation.check_generator(op, generator, concentration.device)
    if _extension.uses_kernels(concentration.device):
        z = _gamma_rsample(concentration, rate, num_samples, generator=generator)
    else:
        z = reference.gamma_rsample(concentration, rate, num_samples, generator=generator)
    return _validation.with_sample_dims(z, sample_dims)


# --- fake kernels ---------------------------------------------------------------------------


@register_fake("gradext::gamma_rsample")
def _gamma_rsample_fake(concentration, rate, num_samples=None, *, generator=None):
    return two_parameter_sample(concentration, rate, num_samples)


@register_fake("gradext::_gamma_rsample_seeded")
def _gamma_rsample_seeded_fake(concentration, rate, num_samples, seed, offset):
    return two_parameter_sample(concentration, rate, num_samples)


@register_fake("gradext::_gamma_rsample_backward")
def _gamma_rsample_backward_fake(grad, z, concentration, rate, output_mask):
    def output(wanted):
        return grad.new_empty(z.shape if wanted else (0,))

    return output(output_mask[0]), output(output_mask[1])


# --- autograd of the sampling ops (gamma_rsample, _seeded) ----------------------------------
# Under torch.func transforms only: elsewhere the same formula runs in C++
# (csrc/ops/gamma_autograd.cpp), which torch.func refuses.


def _sample_setup_context(ctx, inputs, output, keyword_only_inputs=None):
    concentration, rate = inputs[0], inputs[1]
    # The backward reads the sample itself: no rejection loop is run again.
    ctx.save_for_backward(concentration, rate, output)


def _sample_backward(ctx, grad_z):
    concentration, rate, z = ctx.saved_tensors
    need_concentration, need_rate = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
    grad_concentration, grad_rate = _gamma_rsample_backward(
        grad_z, z, concentration, rate, [need_concentration, need_rate]
    )
    if need_concentration:
        grad_concentration = grad_concentration.sum_to_size(concentration.shape)
        grad_concentration = grad_concentration.to(concentration.dtype)
    if need_rate:
        grad_rate = grad_rate.sum_to_size(rate.shape).to(rate.dtype)
    return (
        grad_concentration if need_concentration else None,
        grad_rate if need_rate else None,
    )


# --- the derivative of the fused backward (double backward) ---------------------------------
# Elementwise, with g = z * rate the standard sample and h = dg/dalpha(alpha, g):
#   grad_concentration = grad * h / rate,  grad_rate = -grad * z / rate.
# d/dgrad is each factor; d/dz and d/drate need dh/dg, which has a closed form from
# h = -P_alpha / p: dh/dg = psi(alpha) - log g - h ((alpha - 1) / g - 1). d/dalpha would need
# the second derivative of P in alpha, which is not implemented.


def _backward_setup_context(ctx, inputs, output):
    grad, z, concentration, rate, output_mask = inputs
    ctx.save_for_backward(grad, z, concentration, rate)
    ctx.output_mask = output_mask
    ctx.set_materialize_grads(False)


def _backward_derivative(ctx, grad_grad_concentration, grad_grad_rate):
    grad, z, concentration, rate = ctx.saved_tensors
    if not ctx.output_mask[0]:
        grad_grad_concentration = None  # that output is an empty placeholder
    if not ctx.output_mask[1]:
        grad_grad_rate = None
    need_grad, need_z, need_concentration, need_rate = ctx.needs_input_grad[:4]
    if need_concentration and grad_grad_concentration is not None:
        raise NotImplementedError(
            "gamma_rsample: second derivatives with respect to the concentration are not "
            "implemented (they need the implicit gradient's own derivative in the "
            "concentration); second derivatives with respect to the rate and through the "
            "incoming gradient are"
        )
    rate_full = rate.expand_as(z) if rate.dim() < z.dim() else rate
    d_grad = d_z = d_rate = None
    if grad_grad_concentration is not None:
        ones = torch.ones_like(z)
        dz_dalpha, _ = _gamma_rsample_backward(ones, z, concentration, rate, [True, False])
        if need_grad:
            d_grad = grad_grad_concentration * dz_dalpha
        if need_z or need_rate:
            standard = z * rate_full
            alpha = concentration.to(z.dtype)
            h = dz_dalpha * rate_full
            dh_dg = torch.digamma(alpha) - torch.log(standard) - h * ((alpha - 1) / standard - 1)
            upstream = grad_grad_concentration * grad
            if need_z:
                d_z = upstream * dh_dg
            if need_rate:
                d_rate = upstream * (dh_dg * z - h / rate_full) / rate_full
    if grad_grad_rate is not None:
        if need_grad:
            term = -grad_grad_rate * z / rate_full
            d_grad = term if d_grad is None else d_grad + term
        if need_z:
            term = -grad_grad_rate * grad / rate_full
            d_z = term if d_z is None else d_z + term
        if need_rate:
            term = grad_grad_rate * grad * z / rate_full**2
            d_rate = term if d_rate is None else d_rate + term
    if d_rate is not None:
        d_rate = d_rate.sum_to_size(rate.shape).to(rate.dtype)
    if d_z is not None:
        d_z = d_z.to(z.dtype)
    return d_grad, d_z, None, d_rate


# --- vmap rules (randomness="different") ----------------------------------------------------


def _sample_vmap(info, in_dims, concentration, rate, num_samples, generator=None):
    # The op on the batched parameters: every example gets its own samples, those of the
    # batched output (K, B, *S) (or (B, *S)).
    check_vmap_randomness(info, "gamma_rsample")
    rank = example_rank((concentration, rate), in_dims)
    concentration = batched_param(concentration, in_dims[0], info.batch_size, rank, expand=False)
    rate = batched_param(rate, in_dims[1], info.batch_size, rank, expand=False)
    z = _gamma_rsample(concentration, rate, num_samples, generator=generator)
    return z, 0 if num_samples is None else 1


def _backward_vmap(info, in_dims, grad, z, concentration, rate, output_mask):
    # Elementwise over z's shape: grad and z batch-first (an unbatched one expanded: jacrev's
    # cotangents against one forward's sample), the parameters with singleton dimensions up to
    # z's rank so that they broadcast per example.
    batch = info.batch_size
    rank = max(grad.dim() - (in_dims[0] is not None), z.dim() - (in_dims[1] is not None))
    grad = batch_first(grad, in_dims[0], batch)
    z = batch_first(z, in_dims[1], batch)
    concentration = batched_param(concentration, in_dims[2], batch, rank, expand=False)
    rate = batched_param(rate, in_dims[3], batch, rank, expand=False)
    outputs = _gamma_rsample_backward(grad, z, concentration, rate, output_mask)
    # An output not asked for is the unbatched empty placeholder.
    return outputs, tuple(0 if wanted else None for wanted in output_mask)


# --- registrations: each op's formulas, and the eager entries the code above calls ----------

# The sampling ops' autograd kernel is csrc/ops/gamma_autograd.cpp, the formula of
# _sample_backward; these formulas serve torch.func (see gradext/_custom_op.py).
_gamma_rsample = with_autograd(
    "gradext::gamma_rsample",
    _sample_setup_context,
    _sample_backward,
    _sample_vmap,
    autograd_in_cpp=True,
)
with_autograd(
    "gradext::_gamma_rsample_seeded",
    _sample_setup_context,
    _sample_backward,
    autograd_in_cpp=True,
)
_gamma_rsample_backward = with_autograd(
    "gradext::_gamma_rsample_backward",
    _backward_setup_context,
    _backward_derivative,
    _backward_vmap,
)

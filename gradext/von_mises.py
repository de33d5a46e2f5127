"""The von Mises family: pathwise gradients of angular latents by implicit reparameterization.

    x ~ von Mises(loc, concentration) on [-pi, pi),  x = wrap(loc + delta),
    delta ~ von Mises(0, concentration)
    dx/dloc = 1
    dx/dconcentration = -(dF(delta; concentration)/dconcentration) / p(delta; concentration)

torch.distributions.VonMises has no rsample; this is the pathwise gradient it lacks. The
forward draws each element from its own Philox sub-stream by Best and Fisher's rejection sampler;
the backward reads the saved samples (no rejection loop runs again) and evaluates the implicit
gradient in float64 by quadrature (csrc/common/von_mises_math.h; docs/design.md has its
accuracy).

Read top to bottom: the public function; the fake kernels of the three dispatcher ops
(``von_mises_rsample``, its seeded twin ``_von_mises_rsample_seeded`` and the fused, elementwise
``_von_mises_rsample_backward``); the autograd formula of the sampling ops; the derivative of the
fused backward (double backward, with respect to everything but the concentration); the vmap
rules; the registrations. C++: csrc/ops/von_mises.{h,cpp}, csrc/ops/von_mises_autograd.cpp,
csrc/ops/cpu/von_mises_kernel.cpp, csrc/ops/cuda/von_mises_kernel.cu,
csrc/common/von_mises_{sampler,math}.h. Fallback: gradext/reference/von_mises.py.
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


def von_mises_rsample(
    loc: torch.Tensor,
    concentration: torch.Tensor | float,
    num_samples: int | tuple[int, ...] | None = None,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Reparameterized angles x ~ von Mises(loc, concentration), in [-pi, pi).

    Args:
        loc: the mean direction mu, any floating dtype and shape (any finite value; the sample
            is wrapped into [-pi, pi)).
        concentration: kappa > 0, a tensor broadcastable against ``loc`` or a number.
        num_samples: ``None`` for one sample of shape ``broadcast(loc, concentration)``; an int
            K >= 1 for K independent samples stacked along a new leading dimension.
            A sample_shape tuple or ``torch.Size`` works as in torch.distributions: ``()`` is
            one sample, ``(2, 3)`` six on two leading dims.
        generator: the ``torch.Generator`` to draw from; ``None`` uses the device's default
            generator, so ``torch.manual_seed`` reproduces results.

    Returns:
        x in the promoted dtype of the parameters. Gradients flow to ``loc`` (dx/dloc = 1) and
        to ``concentration`` by implicit reparameterization (Figurnov, Mohamed and Mnih 2018),
        accurate to about 1e-12 relative in float64 at any concentration, each summed to its
        own shape and dtype.

    A loc that is not finite or a concentration that is not positive and finite raises a
    ValueError naming it on the CPU; on a GPU it stops the kernel with a device-side assertion
    (a host check would cost a synchronization per call). Second derivatives are supported with
    respect to loc and through the incoming gradient, not with respect to the concentration.
    """
    op = "von_mises_rsample"
    _validation.check_floating(op, "loc", loc)
    concentration = _validation.positive_parameter(op, "concentration", concentration, loc)
    _validation.check_same_device(op, loc=loc, concentration=concentration)
    _validation.check_no_forward_ad(op, loc, concentration)
    _validation.check_broadcastable(op, loc=loc, concentration=concentration)
    num_samples, sample_dims = _validation.sample_count(op, num_samples)
    _validation.check_generator(op, generator, loc.device)
    if _extension.uses_kernels(loc.device):
        x = _von_mises_rsample(loc, concentration, num_samples, generator=generator)
    else:
        x = reference.von_mises_rsample(loc, concentration, num_samples, generator=generator)
    return _validation.with_sample_dims(x, sample_dims)


# --- fake kernels ---------------------------------------------------------------------------


@register_fake("gradext::von_mises_rsample")
def _von_mises_rsample_fake(loc, concentration, num_samples=None, *, generator=None):
    return two_parameter_sample(loc, concentration, num_samples)


@register_fake("gradext::_von_mises_rsample_seeded")
def _von_mises_rsample_seeded_fake(loc, concentration, num_samples, seed, offset):
    return two_parameter_sample(loc, concentration, num_samples)


@register_fake("gradext::_von_mises_rsample_backward")
def _von_mises_rsample_backward_fake(grad, x, loc, concentration):
    return grad.new_empty(x.shape)


# --- autograd of the sampling ops (von_mises_rsample, _seeded) ------------------------------
# Under torch.func transforms only: elsewhere the same formula runs in C++
# (csrc/ops/von_mises_autograd.cpp), which torch.func refuses.


def _sample_setup_context(ctx, inputs, output, keyword_only_inputs=None):
    loc, concentration = inputs[0], inputs[1]
    # The backward reads the sample itself: no rejection loop is run again.
    ctx.save_for_backward(loc, concentration, output)


def _sample_backward(ctx, grad_x):
    loc, concentration, x = ctx.saved_tensors
    need_loc, need_concentration = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
    grad_loc = grad_concentration = None
    if need_loc:
        grad_loc = grad_x.sum_to_size(loc.shape).to(loc.dtype)
    if need_concentration:
        grad_concentration = _von_mises_rsample_backward(grad_x, x, loc, concentration)
        grad_concentration = grad_concentration.sum_to_size(concentration.shape)
        grad_concentration = grad_concentration.to(concentration.dtype)
    return grad_loc, grad_concentration


# --- the derivative of the fused backward (double backward) ---------------------------------
# Elementwise, with delta = x - loc (periodic functions of it only, so no wrap is needed),
# A = I1(kappa) / I0(kappa) and h = d delta / d kappa:  out = grad * h.
# d/dgrad is h; d/dx = -d/dloc = grad * dh/ddelta, with the closed form from h = -F_kappa / p:
# dh/ddelta = -(cos delta - A) + kappa sin delta h. d/dkappa would need F's second derivative in
# kappa, which is not implemented.


def _backward_setup_context(ctx, inputs, output):
    grad, x, loc, concentration = inputs
    ctx.save_for_backward(grad, x, loc, concentration)
    ctx.set_materialize_grads(False)


def _backward_derivative(ctx, grad_out):
    grad, x, loc, concentration = ctx.saved_tensors
    need_grad, need_x, need_loc, need_concentration = ctx.needs_input_grad[:4]
    if grad_out is None:
        return None, None, None, None
    if need_concentration:
        raise NotImplementedError(
            "von_mises_rsample: second derivatives with respect to the concentration are not "
            "implemented (they need the implicit gradient's own derivative in the "
            "concentration); second derivatives with respect to loc and through the incoming "
            "gradient are"
        )
    h = _von_mises_rsample_backward(torch.ones_like(grad), x, loc, concentration)
    d_grad = grad_out * h if need_grad else None
    d_x = d_loc = None
    if need_x or need_loc:
        kappa = concentration.to(torch.float64)
        delta = x.to(torch.float64) - loc.to(torch.float64)
        mean_resultant = torch.special.i1e(kappa) / torch.special.i0e(kappa)
        dh_ddelta = -(torch.cos(delta) - mean_resultant) + kappa * torch.sin(delta) * h
        upstream = (grad_out * grad).to(torch.float64) * dh_ddelta
        if need_x:
            d_x = upstream.to(x.dtype)
        if need_loc:
            d_loc = (-upstream).sum_to_size(loc.shape).to(loc.dtype)
    return d_grad, d_x, d_loc, None


# --- vmap rules (randomness="different") ----------------------------------------------------


def _sample_vmap(info, in_dims, loc, concentration, num_samples, generator=None):
    # The op on the batched parameters: every example gets its own samples, those of the
    # batched output (K, B, *S) (or (B, *S)).
    check_vmap_randomness(info, "von_mises_rsample")
    rank = example_rank((loc, concentration), in_dims)
    loc = batched_param(loc, in_dims[0], info.batch_size, rank, expand=False)
    concentration = batched_param(concentration, in_dims[1], info.batch_size, rank, expand=False)
    x = _von_mises_rsample(loc, concentration, num_samples, generator=generator)
    return x, 0 if num_samples is None else 1


def _backward_vmap(info, in_dims, grad, x, loc, concentration):
    # Elementwise over x's shape: grad and x batch-first (an unbatched one expanded: jacrev's
    # cotangents against one forward's sample), the parameters with singleton dimensions up to
    # x's rank so that they broadcast per example.
    batch = info.batch_size
    rank = max(grad.dim() - (in_dims[0] is not None), x.dim() - (in_dims[1] is not None))
    grad = batch_first(grad, in_dims[0], batch)
    x = batch_first(x, in_dims[1], batch)
    loc = batched_param(loc, in_dims[2], batch, rank, expand=False)
    concentration = batched_param(concentration, in_dims[3], batch, rank, expand=False)
    return _von_mises_rsample_backward(grad, x, loc, concentration), 0


# --- registrations: each op's formulas, and the eager entries the code above calls ----------

# The sampling ops' autograd kernel is csrc/ops/von_mises_autograd.cpp, the formula of
# _sample_backward; these formulas serve torch.func (see gradext/_custom_op.py).
_von_mises_rsample = with_autograd(
    "gradext::von_mises_rsample",
    _sample_setup_context,
    _sample_backward,
    _sample_vmap,
    autograd_in_cpp=True,
)
with_autograd(
    "gradext::_von_mises_rsample_seeded",
    _sample_setup_context,
    _sample_backward,
    autograd_in_cpp=True,
)
_von_mises_rsample_backward = with_autograd(
    "gradext::_von_mises_rsample_backward",
    _backward_setup_context,
    _backward_derivative,
    _backward_vmap,
)

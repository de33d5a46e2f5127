"""The Gaussian family: pathwise (reparameterization) gradients of Gaussian latents.

    z = mu + exp(logvar / 2) * eps,  eps ~ N(0, I)
    d z / d mu = 1,  d z / d logvar = eps * exp(logvar / 2) / 2

The fused ops never keep the noise: the forward returns its Philox (seed, offset) as a
2-element ``rng_state`` and the backward draws eps again from it.

Read top to bottom: the public function; the fake kernels of the four dispatcher ops
(``gaussian_rsample``, its seeded twin ``_gaussian_rsample_seeded``, ``_gaussian_rsample_replay``
that redraws a forward's sample from its rng_state, and the fused ``_gaussian_rsample_backward``);
the autograd formula of the sampling ops; the derivative of the fused backward (double
backward); the vmap rules; the registrations. C++: csrc/ops/gaussian.{h,cpp},
csrc/ops/cpu/gaussian_*, csrc/ops/cuda/gaussian_kernel.cu. Fallback: gradext/reference/gaussian.py.
"""

from __future__ import annotations

import torch

from gradext import _extension, _validation, reference
from gradext._custom_op import (
    batched_param,
    check_vmap_randomness,
    example_rank,
    register_fake,
    with_autograd,
)


def gaussian_rsample(
    mu: torch.Tensor,
    logvar: torch.Tensor,
    num_samples: int | tuple[int, ...] | None = None,
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
            A sample_shape tuple or ``torch.Size`` works as in torch.distributions: ``()`` is
            one sample, ``(2, 3)`` six on two leading dims.
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
    op = "gaussian_rsample"
    _validation.check_floating(op, "mu", mu)
    _validation.check_floating(op, "logvar", logvar)
    _validation.check_same_device(op, mu=mu, logvar=logvar)
    _validation.check_no_forward_ad(op, mu, logvar)
    _validation.check_broadcastable(op, mu=mu, logvar=logvar)
    num_samples, sample_dims = _validation.sample_count(op, num_samples)
    _validation.check_generator(op, generator, mu.device)
    if _extension.uses_kernels(mu.device):
        z, _ = _gaussian_rsample(mu, logvar, num_samples, generator=generator)
    else:
        z = reference.gaussian_rsample(mu, logvar, num_samples, generator=generator)
    return _validation.with_sample_dims(z, sample_dims)


# --- fake kernels ---------------------------------------------------------------------------


def _sample_and_state(mu, logvar, num_samples):
    shape = torch.broadcast_shapes(mu.shape, logvar.shape)
    if num_samples is not None:
        shape = (num_samples, *shape)
    dtype = torch.promote_types(mu.dtype, logvar.dtype)
    z = mu.new_empty(shape, dtype=dtype)
    rng_state = mu.new_empty((2,), dtype=torch.int64)
    return z, rng_state


@register_fake("gradext::gaussian_rsample")
def _gaussian_rsample_fake(mu, logvar, num_samples=None, *, generator=None):
    return _sample_and_state(mu, logvar, num_samples)


@register_fake("gradext::_gaussian_rsample_seeded")
def _gaussian_rsample_seeded_fake(mu, logvar, num_samples, seed, offset):
    return _sample_and_state(mu, logvar, num_samples)


@register_fake("gradext::_gaussian_rsample_replay")
def _gaussian_rsample_replay_fake(mu, logvar, num_samples, rng_state):
    return _sample_and_state(mu, logvar, num_samples)


@register_fake("gradext::_gaussian_rsample_backward")
def _gaussian_rsample_backward_fake(grad, logvar, rng_state, mu_size, has_sample_dim, need_grad_mu):
    return grad.new_empty(mu_size if need_grad_mu else (0,)), grad.new_empty(logvar.shape)


# --- autograd of the sampling ops (gaussian_rsample, _seeded, _replay) ----------------------
# Under torch.func transforms only: elsewhere the same formula runs in C++
# (csrc/ops/gaussian_autograd.cpp), which torch.func refuses.


def _sample_setup_context(ctx, inputs, output, keyword_only_inputs=None):
    mu, logvar, num_samples = inputs[0], inputs[1], inputs[2]
    _, rng_state = output
    # All that backward keeps: logvar and the 2-element (seed, offset); never the noise.
    ctx.save_for_backward(logvar, rng_state)
    ctx.mu_shape = list(mu.shape)
    ctx.mu_dtype = mu.dtype
    ctx.has_sample_dim = num_samples is not None


def _sample_backward(ctx, grad_z, _grad_rng_state):
    logvar, rng_state = ctx.saved_tensors
    need_mu, need_logvar = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
    grad_mu = grad_logvar = None
    # d z / d mu = 1: grad_mu is grad summed over the samples and broadcast dimensions. With one
    # sample that needs no kernel (grad itself when mu has z's shape), so the fused kernel sums
    # grad_mu only for K > 1 samples, where it shares the pass over grad with grad_logvar.
    one_sample = not ctx.has_sample_dim or grad_z.shape[0] == 1
    if need_logvar:
        grad_mu, grad_logvar = _gaussian_rsample_backward(
            grad_z,
            logvar,
            rng_state,
            ctx.mu_shape,
            ctx.has_sample_dim,
            need_mu and not one_sample,
        )
        if grad_logvar.dtype != logvar.dtype:
            grad_logvar = grad_logvar.to(logvar.dtype)
    if need_mu and (one_sample or not need_logvar):
        if ctx.has_sample_dim:
            grad_z = grad_z[0] if one_sample else grad_z.sum(0)
        grad_mu = grad_z.sum_to_size(ctx.mu_shape)
    if need_mu and grad_mu.dtype != ctx.mu_dtype:
        grad_mu = grad_mu.to(ctx.mu_dtype)
    return (grad_mu if need_mu else None), grad_logvar


# --- the derivative of the fused backward (double backward) ---------------------------------
# grad_mu = grad summed over the samples (and mu's broadcast dimensions);
# grad_logvar = grad * eps * exp(logvar / 2) / 2, summed the same way to logvar's shape.


def _backward_setup_context(ctx, inputs, output):
    grad, logvar, rng_state, mu_size, has_sample_dim, need_grad_mu = inputs
    _, grad_logvar = output
    ctx.save_for_backward(logvar, rng_state, grad_logvar)
    ctx.mu_size = mu_size
    ctx.has_sample_dim = has_sample_dim
    ctx.need_grad_mu = need_grad_mu
    ctx.grad_shape = grad.shape
    ctx.grad_dtype = grad.dtype
    ctx.set_materialize_grads(False)


def _backward_derivative(ctx, grad_grad_mu, grad_grad_logvar):
    logvar, rng_state, grad_logvar = ctx.saved_tensors
    if not ctx.need_grad_mu:
        grad_grad_mu = None  # that output is an empty placeholder
    grad_grad = grad_logvar_twice = None
    if ctx.needs_input_grad[0]:
        if grad_grad_mu is not None:
            grad_grad = grad_grad_mu.expand(ctx.grad_shape)
        if grad_grad_logvar is not None:
            # d grad_logvar / d grad = eps * exp(logvar / 2) / 2 for each sample: the forward's
            # sample with mu = 0, drawn again from rng_state (the backward never keeps noise).
            zero_mu = logvar.new_zeros((), dtype=ctx.grad_dtype).expand(ctx.mu_size)
            num_samples = ctx.grad_shape[0] if ctx.has_sample_dim else None
            scaled_noise, _ = _gaussian_rsample_replay(zero_mu, logvar, num_samples, rng_state)
            term = scaled_noise * (grad_grad_logvar.to(ctx.grad_dtype) / 2)
            grad_grad = term if grad_grad is None else grad_grad + term
    if ctx.needs_input_grad[1] and grad_grad_logvar is not None:
        # exp(logvar / 2) is the only factor in logvar: d grad_logvar / d logvar is grad_logvar / 2,
        # elementwise in logvar's own shape.
        grad_logvar_twice = (grad_grad_logvar * grad_logvar / 2).to(logvar.dtype)
    return grad_grad, grad_logvar_twice


# --- vmap rules (randomness="different") ----------------------------------------------------
# The sampling op's rule calls it once on the batched tensors, so every example gets its own
# noise: that of the batched output (K, B, *S) (or (B, *S)), example b's samples at [:, b]. Its
# rng_state is then one state for the whole batch; the rule hands each example that state as a
# batched tensor (an expanded view), which is how the rules of the backward and replay ops tell
# "this noise follows a batched forward's layout" from "one unbatched forward's noise, shared
# by every cotangent" (jacrev), where rng_state arrives unbatched.


def _forward_layout_vmap(op, info, in_dims, mu, logvar, num_samples, rng_state=None, **kw):
    # The sampling or replay op on the batched tensors; z's batch dimension follows the samples.
    rank = example_rank((mu, logvar), in_dims)
    # Only rng_state batched (a replay after a forward whose logvar was shared): z still needs
    # the batch dimension, so mu takes it.
    only_state_batched = in_dims[0] is None and in_dims[1] is None
    mu = batched_param(mu, in_dims[0], info.batch_size, rank, expand=only_state_batched)
    logvar = batched_param(logvar, in_dims[1], info.batch_size, rank, expand=False)
    args = (mu, logvar, num_samples) if rng_state is None else (mu, logvar, num_samples, rng_state)
    z, state = op(*args, **kw)
    return (z, state.expand(info.batch_size, 2)), (0 if num_samples is None else 1, 0)


def _sample_vmap(info, in_dims, mu, logvar, num_samples, generator=None):
    check_vmap_randomness(info, "gaussian_rsample")
    return _forward_layout_vmap(
        _gaussian_rsample, info, in_dims, mu, logvar, num_samples, generator=generator
    )


def _select_example(tensor, batch_dim, index):
    return tensor if batch_dim is None else tensor.select(batch_dim, index)


def _one_state(rng_state, batch_dim):
    # The batched rng_state of a vmapped forward repeats one state; the ops take it contiguous.
    return rng_state.select(batch_dim, 0).contiguous()


def _replay_vmap(info, in_dims, mu, logvar, num_samples, rng_state):
    if in_dims[3] is not None:  # a vmapped forward's noise: replay it on the batched tensors
        return _forward_layout_vmap(
            _gaussian_rsample_replay,
            info,
            in_dims,
            mu,
            logvar,
            num_samples,
            _one_state(rng_state, in_dims[3]),
        )
    # One unbatched forward's noise, the same for every example.
    zs = [
        _gaussian_rsample_replay(
            _select_example(mu, in_dims[0], b),
            _select_example(logvar, in_dims[1], b),
            num_samples,
            rng_state,
        )[0]
        for b in range(info.batch_size)
    ]
    return (torch.stack(zs), rng_state.clone()), (0, None)


def _backward_vmap(info, in_dims, grad, logvar, rng_state, mu_size, has_sample_dim, need_grad_mu):
    if in_dims[2] is not None:
        return _backward_of_batched_forward(
            info, in_dims, grad, logvar, rng_state, mu_size, has_sample_dim, need_grad_mu
        )
    # jacrev: the cotangents are batched and the noise is one unbatched forward's, so each
    # cotangent is reduced against it in turn.
    grads = [
        _gaussian_rsample_backward(
            _select_example(grad, in_dims[0], b).contiguous(),
            _select_example(logvar, in_dims[1], b),
            rng_state,
            mu_size,
            has_sample_dim,
            need_grad_mu,
        )
        for b in range(info.batch_size)
    ]
    grad_logvar = torch.stack([g[1] for g in grads])
    if not need_grad_mu:
        return (grads[0][0], grad_logvar), (None, 0)  # the empty placeholder
    return (torch.stack([g[0] for g in grads]), grad_logvar), (0, 0)


def _backward_of_batched_forward(
    info, in_dims, grad, logvar, rng_state, mu_size, has_sample_dim, need_grad_mu
):
    # Per-example gradients (vmap of grad) after a vmapped forward: one fused backward over the
    # batched layout, with mu and logvar given the batch dimension so that nothing is summed
    # across examples (an example's gradient is its own even where its mu or logvar was shared).
    batch = info.batch_size
    logvar_shape = logvar.shape[1:] if in_dims[1] is not None else logvar.shape
    rank = len(torch.broadcast_shapes(tuple(mu_size), tuple(logvar_shape)))
    sample_axis = 1 if has_sample_dim else 0
    if in_dims[0] is None:  # e.g. the cotangent of a plain sum: the same for every example
        grad = grad.unsqueeze(sample_axis).expand(
            *grad.shape[:sample_axis], batch, *grad.shape[sample_axis:]
        )
    else:
        grad = grad.movedim(in_dims[0], sample_axis)
    batched_logvar = batched_param(logvar, in_dims[1], batch, rank, expand=True)
    batched_mu_size = [batch, *([1] * (rank - len(mu_size))), *mu_size]
    grad_mu, grad_logvar = _gaussian_rsample_backward(
        grad.contiguous(),
        batched_logvar,
        _one_state(rng_state, in_dims[2]),
        batched_mu_size,
        has_sample_dim,
        need_grad_mu,
    )
    grad_logvar = grad_logvar.reshape(batch, *logvar_shape)
    if not need_grad_mu:
        return (grad_mu, grad_logvar), (None, 0)  # the empty placeholder
    return (grad_mu.reshape(batch, *mu_size), grad_logvar), (0, 0)


# --- registrations: each op's formulas, and the eager entries the code above calls ----------

# The sampling ops' autograd kernel is csrc/ops/gaussian_autograd.cpp, the formula of
# _sample_backward; these formulas serve torch.func (see gradext/_custom_op.py).
_gaussian_rsample = with_autograd(
    "gradext::gaussian_rsample",
    _sample_setup_context,
    _sample_backward,
    _sample_vmap,
    autograd_in_cpp=True,
)
with_autograd(
    "gradext::_gaussian_rsample_seeded",
    _sample_setup_context,
    _sample_backward,
    autograd_in_cpp=True,
)
_gaussian_rsample_replay = with_autograd(
    "gradext::_gaussian_rsample_replay",
    _sample_setup_context,
    _sample_backward,
    _replay_vmap,
    autograd_in_cpp=True,
)
_gaussian_rsample_backward = with_autograd(
    "gradext::_gaussian_rsample_backward",
    _backward_setup_context,
    _backward_derivative,
    _backward_vmap,
)

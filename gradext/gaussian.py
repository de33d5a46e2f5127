"""The Gaussian family: pathwise (reparameterization) gradients of Gaussian latents, in two
parametrizations of the spread that share every kernel and the noise:

    gaussian_rsample(mu, logvar):  z = mu + exp(logvar / 2) * eps     (a VAE encoder's output)
        d z / d mu = 1,  d z / d logvar = eps * exp(logvar / 2) / 2
    normal_rsample(loc, scale):    z = loc + scale * eps              (torch.distributions.Normal)
        d z / d loc = 1,  d z / d scale = eps  (exact at scale = 0)

The fused ops never keep the noise: the forward returns its Philox (seed, offset) as a
2-element ``rng_state`` and the backward draws eps again from it. For one (seed, offset) both
parametrizations draw the same eps.

Read top to bottom: the public functions; the fake kernels of each parametrization's four
dispatcher ops (``<op>``, its seeded twin ``_<op>_seeded``, ``_<op>_replay`` that redraws a
forward's sample from its rng_state, and the fused ``_<op>_backward``); the autograd formula of the
sampling ops; the derivative of the fused backward (double backward); the vmap rules; the
registrations, once per parametrization. C++: csrc/ops/gaussian.{h,cpp},
csrc/common/gaussian_spread.h, csrc/ops/cpu/gaussian_*, csrc/ops/cuda/gaussian_kernel.cu.
Fallback: gradext/reference/gaussian.py.
"""

from __future__ import annotations

import dataclasses
import functools

import torch
from torch.autograd import forward_ad

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
    if _plain_call(mu, logvar, num_samples, generator):
        # The dispatcher op's own callable: OpOverload.__call__ is one more Python frame.
        return LOGVAR.ops.sample.op._op(mu, logvar)[0]
    return _checked_rsample(LOGVAR, mu, logvar, num_samples, generator)


def normal_rsample(
    loc: torch.Tensor,
    scale: torch.Tensor,
    num_samples: int | tuple[int, ...] | None = None,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Reparameterized samples z = loc + scale * eps, eps ~ N(0, I): torch.distributions.Normal's
    parametrization, with gaussian_rsample's fused kernels and noise.

    Args and result as gaussian_rsample's, with ``loc`` for mu and ``scale`` (the standard
    deviation, broadcastable against ``loc``) for logvar. Gradients: ``loc`` gets the sum over
    samples of the incoming gradient, ``scale`` the sum of grad * eps, which involves no function
    of the scale: it is exact at scale = 0, where ``gaussian_rsample(loc, 2 * log(scale))`` has
    no finite logvar. The scale is not checked (torch's Normal checks it with
    ``validate_args``); a negative scale gives loc - |scale| * eps, which has the same law.
    For one (seed, offset) the eps is gaussian_rsample's: ``normal_rsample(m, exp(lv / 2))``
    and ``gaussian_rsample(m, lv)`` agree to rounding.
    """
    if _plain_call(loc, scale, num_samples, generator):
        return SCALE.ops.sample.op._op(loc, scale)[0]
    return _checked_rsample(SCALE, loc, scale, num_samples, generator)


def _checked_rsample(p, mean, spread, num_samples, generator):
    """Every call that is not plain (_plain_call): the Python checks, then the op or the
    fallback."""
    op = p.op
    _validation.check_floating(op, p.mean, mean)
    _validation.check_floating(op, p.spread, spread)
    _validation.check_same_device(op, **{p.mean: mean, p.spread: spread})
    _validation.check_no_forward_ad(op, mean, spread)
    _validation.check_broadcastable(op, **{p.mean: mean, p.spread: spread})
    num_samples, sample_dims = _validation.sample_count(op, num_samples)
    _validation.check_generator(op, generator, mean.device)
    if _extension.uses_kernels(mean.device):
        z, _ = p.ops.sample(mean, spread, num_samples, generator=generator)
    else:
        z = p.reference(mean, spread, num_samples, generator=generator)
    return _validation.with_sample_dims(z, sample_dims)


_KERNEL_DTYPES = frozenset(_validation.FLOATING_DTYPES)


def _plain_call(mean, spread, num_samples, generator) -> bool:
    """Whether this is the call of a training step, for which every check of _rsample passes and
    the eager entry calls the dispatcher op as it is: two plain tensors (not subclasses, not
    nested) of a kernel dtype, one shape and one device that has the kernels, one sample, the
    default generator, no forward-mode AD, no torch.func transform, no torch.compile trace.
    Asking costs about a microsecond; the checks and the entry cost five, a tenth of the op's
    forward+backward at a [128, 20] latent (docs/performance.md, "Per-call cost")."""
    if (
        torch.compiler.is_compiling()
        or generator is not None
        or not (num_samples is None or (isinstance(num_samples, tuple) and not num_samples))
        or type(mean) is not torch.Tensor
        or type(spread) is not torch.Tensor
        or forward_ad._current_level >= 0
        or torch._C._are_functorch_transforms_active()
        or mean.is_nested
        or spread.is_nested
        or mean.dtype not in _KERNEL_DTYPES
        or spread.dtype not in _KERNEL_DTYPES
        or mean.shape != spread.shape
    ):
        return False
    if mean.is_cpu and spread.is_cpu:  # the common case, without building device objects
        return _extension.kernels_on_cpu
    device = mean.device
    return device == spread.device and _extension.uses_kernels(device)


@dataclasses.dataclass
class _Entries:
    """The eager entries of one parametrization's dispatcher ops."""

    sample: object
    replay: object
    backward: object


@dataclasses.dataclass
class _Parametrization:
    """One parametrization: its names, its fallback, what its double backward needs (below) and,
    once registered, its eager entries (``ops``)."""

    op: str
    mean: str
    spread: str
    reference: object
    # d grad_spread / d grad for each sample is eps * d sd / d spread, drawn again by the replay
    # op with a zero mean: replay(0, noise_spread(spread)) * noise_factor.
    noise_spread: object
    noise_factor: float
    # d grad_spread / d spread, times the incoming grad_grad_spread (None where it is zero).
    spread_second_derivative: object
    ops: _Entries | None = None


# exp(logvar / 2) is the only factor in logvar: d grad_logvar / d logvar is grad_logvar / 2,
# elementwise in logvar's own shape. grad_scale = sum grad * eps has no scale in it.
LOGVAR = _Parametrization(
    "gaussian_rsample",
    "mu",
    "logvar",
    reference.gaussian_rsample,
    noise_spread=lambda logvar: logvar,
    noise_factor=0.5,
    spread_second_derivative=lambda grad_grad_logvar, grad_logvar: (
        grad_grad_logvar * grad_logvar / 2
    ),
)
SCALE = _Parametrization(
    "normal_rsample",
    "loc",
    "scale",
    reference.normal_rsample,
    noise_spread=torch.ones_like,
    noise_factor=1.0,
    spread_second_derivative=lambda grad_grad_scale, grad_scale: None,
)


# --- fake kernels (the same for both parametrizations) --------------------------------------


def _sample_and_state(mean, spread, num_samples):
    shape = torch.broadcast_shapes(mean.shape, spread.shape)
    if num_samples is not None:
        shape = (num_samples, *shape)
    dtype = torch.promote_types(mean.dtype, spread.dtype)
    z = mean.new_empty(shape, dtype=dtype)
    rng_state = mean.new_empty((2,), dtype=torch.int64)
    return z, rng_state


def _sample_fake(mean, spread, num_samples=None, *, generator=None):
    return _sample_and_state(mean, spread, num_samples)


def _seeded_fake(mean, spread, num_samples, seed, offset):
    return _sample_and_state(mean, spread, num_samples)


def _replay_fake(mean, spread, num_samples, rng_state):
    return _sample_and_state(mean, spread, num_samples)


def _backward_fake(grad, spread, rng_state, mean_size, has_sample_dim, need_grad_mean):
    return grad.new_empty(mean_size if need_grad_mean else (0,)), grad.new_empty(spread.shape)


for _op in (LOGVAR.op, SCALE.op):
    register_fake(f"gradext::{_op}")(_sample_fake)
    register_fake(f"gradext::_{_op}_seeded")(_seeded_fake)
    register_fake(f"gradext::_{_op}_replay")(_replay_fake)
    register_fake(f"gradext::_{_op}_backward")(_backward_fake)


# --- autograd of the sampling ops (<op>, _seeded, _replay) ----------------------------------
# Under torch.func transforms only: elsewhere the same formula runs in C++
# (csrc/ops/gaussian_autograd.cpp), which torch.func refuses.


def _sample_setup_context(ctx, inputs, output, keyword_only_inputs=None):
    mean, spread, num_samples = inputs[0], inputs[1], inputs[2]
    _, rng_state = output
    # All that backward keeps: the spread and the 2-element (seed, offset); never the noise.
    ctx.save_for_backward(spread, rng_state)
    ctx.mean_shape = list(mean.shape)
    ctx.mean_dtype = mean.dtype
    ctx.has_sample_dim = num_samples is not None


def _sample_backward(p, ctx, grad_z, _grad_rng_state):
    spread, rng_state = ctx.saved_tensors
    need_mean, need_spread = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
    grad_mean = grad_spread = None
    # d z / d mean = 1: grad_mean is grad summed over the samples and broadcast dimensions. With
    # one sample that needs no kernel (grad itself when the mean has z's shape), so the fused
    # kernel sums grad_mean only for K > 1 samples, where it shares the pass over grad with
    # grad_spread.
    one_sample = not ctx.has_sample_dim or grad_z.shape[0] == 1
    if need_spread:
        grad_mean, grad_spread = p.ops.backward(
            grad_z,
            spread,
            rng_state,
            ctx.mean_shape,
            ctx.has_sample_dim,
            need_mean and not one_sample,
        )
        if grad_spread.dtype != spread.dtype:
            grad_spread = grad_spread.to(spread.dtype)
    if need_mean and (one_sample or not need_spread):
        if ctx.has_sample_dim:
            grad_z = grad_z[0] if one_sample else grad_z.sum(0)
        grad_mean = grad_z.sum_to_size(ctx.mean_shape)
    if need_mean and grad_mean.dtype != ctx.mean_dtype:
        grad_mean = grad_mean.to(ctx.mean_dtype)
    return (grad_mean if need_mean else None), grad_spread


# --- the derivative of the fused backward (double backward) ---------------------------------
# grad_mean = grad summed over the samples (and the mean's broadcast dimensions);
# grad_spread = grad * eps * d sd / d spread, summed the same way to the spread's shape.


def _backward_setup_context(ctx, inputs, output):
    grad, spread, rng_state, mean_size, has_sample_dim, need_grad_mean = inputs
    _, grad_spread = output
    ctx.save_for_backward(spread, rng_state, grad_spread)
    ctx.mean_size = mean_size
    ctx.has_sample_dim = has_sample_dim
    ctx.need_grad_mean = need_grad_mean
    ctx.grad_shape = grad.shape
    ctx.grad_dtype = grad.dtype
    ctx.set_materialize_grads(False)


def _backward_derivative(p, ctx, grad_grad_mean, grad_grad_spread):
    spread, rng_state, grad_spread = ctx.saved_tensors
    if not ctx.need_grad_mean:
        grad_grad_mean = None  # that output is an empty placeholder
    grad_grad = grad_spread_twice = None
    if ctx.needs_input_grad[0]:
        if grad_grad_mean is not None:
            grad_grad = grad_grad_mean.expand(ctx.grad_shape)
        if grad_grad_spread is not None:
            # d grad_spread / d grad = eps * d sd / d spread for each sample: the forward's sample
            # with a zero mean, drawn again from rng_state (the backward never keeps noise).
            zero_mean = spread.new_zeros((), dtype=ctx.grad_dtype).expand(ctx.mean_size)
            num_samples = ctx.grad_shape[0] if ctx.has_sample_dim else None
            scaled_noise, _ = p.ops.replay(
                zero_mean, p.noise_spread(spread), num_samples, rng_state
            )
            term = scaled_noise * (grad_grad_spread.to(ctx.grad_dtype) * p.noise_factor)
            grad_grad = term if grad_grad is None else grad_grad + term
    if ctx.needs_input_grad[1] and grad_grad_spread is not None:
        grad_spread_twice = p.spread_second_derivative(grad_grad_spread, grad_spread)
        if grad_spread_twice is not None:
            grad_spread_twice = grad_spread_twice.to(spread.dtype)
    return grad_grad, grad_spread_twice


# --- vmap rules (randomness="different") ----------------------------------------------------
# The sampling op's rule calls it once on the batched tensors, so every example gets its own
# noise: that of the batched output (K, B, *S) (or (B, *S)), example b's samples at [:, b]. Its
# rng_state is then one state for the whole batch; the rule hands each example that state as a
# batched tensor (an expanded view), which is how the rules of the backward and replay ops tell
# "this noise follows a batched forward's layout" from "one unbatched forward's noise, shared
# by every cotangent" (jacrev), where rng_state arrives unbatched.


def _forward_layout_vmap(op, info, in_dims, mean, spread, num_samples, rng_state=None, **kw):
    # The sampling or replay op on the batched tensors; z's batch dimension follows the samples.
    rank = example_rank((mean, spread), in_dims)
    # Only rng_state batched (a replay after a forward whose spread was shared): z still needs
    # the batch dimension, so the mean takes it.
    only_state_batched = in_dims[0] is None and in_dims[1] is None
    mean = batched_param(mean, in_dims[0], info.batch_size, rank, expand=only_state_batched)
    spread = batched_param(spread, in_dims[1], info.batch_size, rank, expand=False)
    args = (mean, spread, num_samples)
    if rng_state is not None:
        args = (*args, rng_state)
    z, state = op(*args, **kw)
    return (z, state.expand(info.batch_size, 2)), (0 if num_samples is None else 1, 0)


def _sample_vmap(p, info, in_dims, mean, spread, num_samples, generator=None):
    check_vmap_randomness(info, p.op)
    return _forward_layout_vmap(
        p.ops.sample, info, in_dims, mean, spread, num_samples, generator=generator
    )


def _select_example(tensor, batch_dim, index):
    return tensor if batch_dim is None else tensor.select(batch_dim, index)


def _one_state(rng_state, batch_dim):
    # The batched rng_state of a vmapped forward repeats one state; the ops take it contiguous.
    return rng_state.select(batch_dim, 0).contiguous()


def _replay_vmap(p, info, in_dims, mean, spread, num_samples, rng_state):
    if in_dims[3] is not None:  # a vmapped forward's noise: replay it on the batched tensors
        return _forward_layout_vmap(
            p.ops.replay,
            info,
            in_dims,
            mean,
            spread,
            num_samples,
            _one_state(rng_state, in_dims[3]),
        )
    # One unbatched forward's noise, the same for every example.
    zs = [
        p.ops.replay(
            _select_example(mean, in_dims[0], b),
            _select_example(spread, in_dims[1], b),
            num_samples,
            rng_state,
        )[0]
        for b in range(info.batch_size)
    ]
    return (torch.stack(zs), rng_state.clone()), (0, None)


def _backward_vmap(
    p, info, in_dims, grad, spread, rng_state, mean_size, has_sample_dim, need_grad_mean
):
    if in_dims[2] is not None:
        return _backward_of_batched_forward(
            p, info, in_dims, grad, spread, rng_state, mean_size, has_sample_dim, need_grad_mean
        )
    # jacrev: the cotangents are batched and the noise is one unbatched forward's, so each
    # cotangent is reduced against it in turn.
    grads = [
        p.ops.backward(
            _select_example(grad, in_dims[0], b).contiguous(),
            _select_example(spread, in_dims[1], b),
            rng_state,
            mean_size,
            has_sample_dim,
            need_grad_mean,
        )
        for b in range(info.batch_size)
    ]
    grad_spread = torch.stack([g[1] for g in grads])
    if not need_grad_mean:
        return (grads[0][0], grad_spread), (None, 0)  # the empty placeholder
    return (torch.stack([g[0] for g in grads]), grad_spread), (0, 0)


def _backward_of_batched_forward(
    p, info, in_dims, grad, spread, rng_state, mean_size, has_sample_dim, need_grad_mean
):
    # Per-example gradients (vmap of grad) after a vmapped forward: one fused backward over the
    # batched layout, with the mean and spread given the batch dimension so that nothing is
    # summed across examples (an example's gradient is its own even where its mean or spread was
    # shared).
    batch = info.batch_size
    spread_shape = spread.shape[1:] if in_dims[1] is not None else spread.shape
    rank = len(torch.broadcast_shapes(tuple(mean_size), tuple(spread_shape)))
    sample_axis = 1 if has_sample_dim else 0
    if in_dims[0] is None:  # e.g. the cotangent of a plain sum: the same for every example
        grad = grad.unsqueeze(sample_axis).expand(
            *grad.shape[:sample_axis], batch, *grad.shape[sample_axis:]
        )
    else:
        grad = grad.movedim(in_dims[0], sample_axis)
    batched_spread = batched_param(spread, in_dims[1], batch, rank, expand=True)
    batched_mean_size = [batch, *([1] * (rank - len(mean_size))), *mean_size]
    grad_mean, grad_spread = p.ops.backward(
        grad.contiguous(),
        batched_spread,
        _one_state(rng_state, in_dims[2]),
        batched_mean_size,
        has_sample_dim,
        need_grad_mean,
    )
    grad_spread = grad_spread.reshape(batch, *spread_shape)
    if not need_grad_mean:
        return (grad_mean, grad_spread), (None, 0)  # the empty placeholder
    return (grad_mean.reshape(batch, *mean_size), grad_spread), (0, 0)


# --- registrations: each op's formulas, and the eager entries the code above calls ----------


def _register(p: _Parametrization) -> _Entries | None:
    """Registers one parametrization's formulas. The sampling ops' autograd kernel is
    csrc/ops/gaussian_autograd.cpp, the formula of _sample_backward; these formulas serve
    torch.func (see gradext/_custom_op.py)."""
    backward = functools.partial(_sample_backward, p)
    sample = with_autograd(
        f"gradext::{p.op}",
        _sample_setup_context,
        backward,
        functools.partial(_sample_vmap, p),
        autograd_in_cpp=True,
    )
    with_autograd(f"gradext::_{p.op}_seeded", _sample_setup_context, backward, autograd_in_cpp=True)
    replay = with_autograd(
        f"gradext::_{p.op}_replay",
        _sample_setup_context,
        backward,
        functools.partial(_replay_vmap, p),
        autograd_in_cpp=True,
    )
    fused_backward = with_autograd(
        f"gradext::_{p.op}_backward",
        _backward_setup_context,
        functools.partial(_backward_derivative, p),
        functools.partial(_backward_vmap, p),
    )
    return None if sample is None else _Entries(sample, replay, fused_backward)


LOGVAR.ops = _register(LOGVAR)
SCALE.ops = _register(SCALE)
# The eager entries by name, for tests that call them directly.
_gaussian_rsample = LOGVAR.ops and LOGVAR.ops.sample
_gaussian_rsample_replay = LOGVAR.ops and LOGVAR.ops.replay
_gaussian_rsample_backward = LOGVAR.ops and LOGVAR.ops.backward

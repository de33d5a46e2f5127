"""The score-function family: REINFORCE gradients with leave-one-out baselines, for latents
that cannot be reparameterized.

    score_function_loo (RLOO):  d log_prob[k] = grad * (f_k - b_k) / K,
                                b_k = (sum_j f_j - f_k) / (K - 1)
    vimco:                      L = logsumexp(log w) - log K,
                                d log_prob[k] = grad * (L - L_{-k}),
                                d log w = grad * softmax(log w)

Typical use, with K samples per datapoint along dim 0 (gradext.categorical_sample draws them)::

    index, log_prob = gradext.categorical_sample(logits, num_samples=K)   # [K, B]
    f = reward(index)                                                     # [K, B]
    objective = gradext.score_function_loo(f, log_prob)                   # [B], mean of f
    (-objective.sum()).backward()   # d logits: the RLOO estimator, baseline for free

Convention for double backward: the learning signal is a constant under differentiation, as in
the usual surrogate ``signal * (log_prob - log_prob.detach())``; the incoming gradient and
VIMCO's softmax weights are differentiated exactly.

Read top to bottom: the public functions and their argument checks; the fake kernels of the
dispatcher ops (``score_function_loo``, ``vimco`` and their fused backwards
``_score_function_loo_backward``, ``_vimco_backward``); the autograd formulas; the derivatives of
the fused backwards; the vmap rules; the registrations. C++: csrc/ops/score_function.{h,cpp},
csrc/common/leave_one_out.h (the algebra), csrc/ops/cpu/score_function_*,
csrc/ops/cuda/score_function_kernel.cu. Fallback: gradext/reference/score_function.py.
"""

from __future__ import annotations

import torch

from gradext import _extension, _validation, reference
from gradext._custom_op import batch_first, register_fake, with_autograd


def score_function_loo(
    f: torch.Tensor,
    log_prob: torch.Tensor,
    dim: int = 0,
    *,
    group_size: int | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """REINFORCE with the leave-one-out baseline (RLOO; Kool et al. 2019).

    Args:
        f: the objective's values (rewards) for K samples along ``dim``. If f requires grad (a
            pathwise part), it gets the plain gradient of the mean; in the score term it is a
            constant.
        log_prob: log q(z_k), same shape, carrying the graph to q's parameters.
        dim: the sample axis (anywhere).
        group_size: ``None``: ``dim`` holds the K samples of one group. An int K: ``dim`` holds
            consecutive groups of K samples (the flat ``[B * K]`` layout of RL trainers, where
            completion i belongs to prompt i // K), as if viewed ``(-1, K)`` there.
        mask: optional bool tensor of f's shape, True for the samples that count. The others
            are left out of their group: their f is never read (NaN rewards are fine), their
            log_prob gets no gradient, and the mean and the baselines are over the group's
            valid samples only.

    Returns:
        The mean of f over each group's (valid) samples: ``dim`` removed, or replaced by the
        number of groups with ``group_size``. Its gradient with respect to log_prob[k] is
        grad * (f_k - b_k) / K, b_k = (sum_j f_j - f_k) / (K - 1) the mean of the other
        samples, computed as grad * (f_k - mean f) / (K - 1). With a mask, K is the group's
        number of valid samples n: a group with n = 1 gets a zero advantage (no other sample
        to compare with; so does K = 1 without a mask, as in TRL), one with n = 0 the value 0
        and no gradient.

    Without a mask and with K >= 2: one fused kernel each way; backward keeps only f (no
    per-sample intermediates) and hands f its gradient as a broadcast view (no K-sized write).
    With a mask, or K = 1: a few torch ops on every path (gradext.reference's masked RLOO).
    """
    op = "score_function_loo"
    dim = _check_samples(op, "f", f, "log_prob", log_prob, dim, minimum_samples=1)
    if mask is not None:
        _check_mask(op, mask, f)
    if group_size is not None:
        _validation.check_count(op, "group_size", group_size)
        if f.shape[dim] % group_size:
            raise ValueError(
                f"{op}: group_size {group_size} does not divide the {f.shape[dim]} samples "
                f"along dim {dim} of f"
            )
        dim = dim % f.dim()
        f, log_prob = (t.unflatten(dim, (-1, group_size)) for t in (f, log_prob))
        mask = None if mask is None else mask.unflatten(dim, (-1, group_size))
        dim += 1
    # (Under torch.jit.trace the fused path is recorded: K = 1 is then the op's error.)
    if mask is not None or (not _validation.tracing() and f.shape[dim] == 1):
        valid = torch.ones_like(f, dtype=torch.bool) if mask is None else mask
        return reference.score_function_loo_masked(f, log_prob, valid, dim)
    if not _extension.uses_kernels(f.device):
        return reference.score_function_loo(f, log_prob, dim)
    return _score_function_loo(f, log_prob, dim)


def vimco(log_weights: torch.Tensor, log_prob: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """The K-sample bound with VIMCO's leave-one-out learning signals (Mnih and Rezende 2016).

    Args:
        log_weights: log w_k = log p(x, z_k) - log q(z_k) for K >= 2 samples along ``dim``,
            with its pathwise graph.
        log_prob: log q(z_k), same shape, carrying the graph to q's parameters.
        dim: the sample axis.

    Returns:
        L = logsumexp(log_weights, dim) - log K. Gradients: softmax(log_weights, dim) * grad for
        log_weights; (L - L_{-k}) * grad for log_prob[k], where L_{-k} is L with log w_k replaced
        by the mean of the other K - 1 log weights.

    O(K) per datapoint and stable at any finite log weights (no exp overflows at +-1e4, no
    cancellation when one weight dominates; csrc/common/leave_one_out.h has the algebra). The
    forward keeps 6 scalars per datapoint; the backward reads the log weights twice (a pass for
    the leave-one-out sums, which keep the signals exact at the range edges, then the gradients).
    """
    op = "vimco"
    dim = _check_samples(op, "log_weights", log_weights, "log_prob", log_prob, dim)
    if not _extension.uses_kernels(log_weights.device):
        return reference.vimco(log_weights, log_prob, dim)
    bound, _ = _vimco(log_weights, log_prob, dim)
    return bound


def _check_samples(
    op: str, values_name: str, values, other_name: str, other, dim, minimum_samples: int = 2
) -> int:
    """Validates a (values, log_prob) pair with K >= minimum_samples along dim; returns dim as
    an int."""
    _validation.check_floating(op, values_name, values)
    _validation.check_floating(op, other_name, other)
    if not _validation.tracing() and values.shape != other.shape:
        raise ValueError(
            f"{op}: {values_name} of shape {tuple(values.shape)} and {other_name} of shape "
            f"{tuple(other.shape)} must have the same shape"
        )
    _validation.check_same_device(op, **{values_name: values, other_name: other})
    if values.dim() == 0:
        raise ValueError(f"{op}: {values_name} must have at least one dimension (the samples)")
    dim = _validation.as_dim(op, dim, values_name, values)
    _validation.check_no_forward_ad(op, values, other)
    K = values.shape[dim]
    if not _validation.tracing() and K < minimum_samples:
        why = " (a leave-one-out baseline needs another sample)" if minimum_samples == 2 else ""
        raise ValueError(
            f"{op}: needs K >= {minimum_samples} samples along dim {dim} of {values_name}{why}, "
            f"got K = {K}"
        )
    _validation.check_sample_count(op, K)
    return dim


def _check_mask(op: str, mask, values) -> None:
    _validation.check_tensor(op, "mask", mask)
    if mask.dtype != torch.bool:
        raise TypeError(f"{op}: mask must be a bool tensor, got dtype {mask.dtype}")
    if mask.shape != values.shape:
        raise ValueError(
            f"{op}: mask of shape {tuple(mask.shape)} must have the shape of f "
            f"{tuple(values.shape)}"
        )
    _validation.check_same_device(op, f=values, mask=mask)


# --- fake kernels ---------------------------------------------------------------------------

VIMCO_STATS_ROWS = 6  # csrc/common/leave_one_out.h: kVimcoStatsRows


def _reduced(values, dim):
    shape = list(values.shape)
    del shape[dim]
    return values.new_empty(shape)


def _math_dtype(dtype):
    return torch.promote_types(dtype, torch.float32)


@register_fake("gradext::score_function_loo")
def _score_function_loo_fake(f, log_prob, dim):
    return _reduced(f, dim)


@register_fake("gradext::_score_function_loo_backward")
def _score_function_loo_backward_fake(grad, f, dim):
    return torch.empty_like(f, memory_format=torch.contiguous_format)


@register_fake("gradext::vimco")
def _vimco_fake(log_weights, log_prob, dim):
    bound = _reduced(log_weights, dim)
    stats = log_weights.new_empty(
        (VIMCO_STATS_ROWS, bound.numel()), dtype=_math_dtype(log_weights.dtype)
    )
    return bound, stats


@register_fake("gradext::_vimco_backward")
def _vimco_backward_fake(grad, log_weights, stats, dim, output_mask):
    def out(wanted):
        if wanted:
            return torch.empty_like(log_weights, memory_format=torch.contiguous_format)
        return log_weights.new_empty((0,))

    return out(output_mask[0]), out(output_mask[1])


# --- autograd of the estimators -------------------------------------------------------------
# Under torch.func transforms only: elsewhere the same formulas run in C++
# (csrc/ops/score_function_autograd.cpp), which torch.func refuses.


def _score_function_loo_setup_context(ctx, inputs, output):
    f, log_prob, dim = inputs
    ctx.save_for_backward(f)  # the only tensor kept: the values (the baseline needs them all)
    ctx.dim = dim
    ctx.log_prob_dtype = log_prob.dtype


def _score_function_loo_estimator(ctx, grad):
    (f,) = ctx.saved_tensors
    grad_f = grad_log_prob = None
    if ctx.needs_input_grad[0]:
        # d mean / d f_k = 1 / K for every k: a broadcast view, nothing of size K is written.
        grad_f = (grad / f.shape[ctx.dim]).unsqueeze(ctx.dim).expand(f.shape)
    if ctx.needs_input_grad[1]:
        grad_log_prob = _score_function_loo_backward(grad.contiguous(), f, ctx.dim).to(
            ctx.log_prob_dtype
        )
    return grad_f, grad_log_prob


def _vimco_setup_context(ctx, inputs, output):
    log_weights, log_prob, dim = inputs
    _, stats = output
    ctx.mark_non_differentiable(stats)
    # Kept: the log weights and 6 scalars per datapoint.
    ctx.save_for_backward(log_weights, stats)
    ctx.dim = dim
    ctx.log_prob_dtype = log_prob.dtype
    ctx.set_materialize_grads(False)


def _vimco_estimator(ctx, grad, _grad_stats):
    log_weights, stats = ctx.saved_tensors
    need_weights, need_log_prob = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
    if grad is None or not (need_weights or need_log_prob):
        return None, None
    grad_weights, grad_log_prob = _vimco_backward(
        grad.contiguous(), log_weights, stats, ctx.dim, [need_weights, need_log_prob]
    )
    return (
        grad_weights if need_weights else None,
        grad_log_prob.to(ctx.log_prob_dtype) if need_log_prob else None,
    )


# --- the derivatives of the fused backwards (double backward) --------------------------------


# grad_log_prob = grad * (f_k - mean f) / (K - 1): linear in grad; the learning signal is a
# constant, so nothing flows to f.
def _score_function_loo_backward_setup_context(ctx, inputs, output):
    grad, f, dim = inputs
    ctx.save_for_backward(f)
    ctx.dim = dim
    ctx.grad_dtype = grad.dtype


def _score_function_loo_backward_derivative(ctx, grad_grad_log_prob):
    (f,) = ctx.saved_tensors
    grad_grad = None
    if ctx.needs_input_grad[0]:
        values = f.detach().to(_math_dtype(f.dtype))
        centred = values - values.mean(ctx.dim, keepdim=True)
        grad_grad = (grad_grad_log_prob.to(values.dtype) * centred).sum(ctx.dim)
        grad_grad = grad_grad.div(f.shape[ctx.dim] - 1).to(ctx.grad_dtype)
    return (grad_grad,)


# (grad_log_weights, grad_log_prob) = grad * (softmax(w), L - L_{-k}): differentiated exactly in
# grad and, through the softmax weights, in w; the learning signal L - L_{-k} is a constant.
def _vimco_backward_setup_context(ctx, inputs, output):
    grad, log_weights, stats, dim, output_mask = inputs
    ctx.save_for_backward(grad, log_weights, stats)
    ctx.dim = dim
    ctx.output_mask = output_mask
    ctx.set_materialize_grads(False)


def _vimco_backward_derivative(ctx, grad_grad_weights, grad_grad_log_prob):
    grad, log_weights, stats = ctx.saved_tensors
    dim = ctx.dim
    if not ctx.output_mask[0]:
        grad_grad_weights = None  # empty placeholders
    if not ctx.output_mask[1]:
        grad_grad_log_prob = None
    need_grad = ctx.needs_input_grad[0]
    need_weights = ctx.needs_input_grad[1] and grad_grad_weights is not None
    want_softmax = grad_grad_weights is not None and (need_grad or need_weights)
    want_signal = grad_grad_log_prob is not None and need_grad
    if not (want_softmax or want_signal):
        return None, None
    # The op itself with grad = 1 gives the softmax weights and the learning signals, and keeps
    # the softmax differentiable for the next order.
    softmax, signal = _vimco_backward(
        torch.ones_like(grad), log_weights, stats, dim, [want_softmax, want_signal]
    )
    math_dtype = _math_dtype(log_weights.dtype)
    softmax = softmax.to(math_dtype)
    grad_grad = grad_weights = None
    if need_grad:
        terms = []
        if want_softmax:
            terms.append((grad_grad_weights.to(math_dtype) * softmax).sum(dim))
        if want_signal:
            terms.append((grad_grad_log_prob.to(math_dtype) * signal.to(math_dtype)).sum(dim))
        grad_grad = sum(terms[1:], terms[0]).to(grad.dtype)
    if need_weights:
        # d softmax_j / d w_i = softmax_j (delta_ij - softmax_i).
        weighted = grad_grad_weights.to(math_dtype) * softmax
        centred = weighted - softmax * weighted.sum(dim, keepdim=True)
        grad_weights = (grad.to(math_dtype).unsqueeze(dim) * centred).to(log_weights.dtype)
    return grad_grad, grad_weights


# --- vmap rules -----------------------------------------------------------------------------
# The vmapped dimension goes first and the sample axis moves by one.


def _logical_dim(dim, tensor, batch_dim):
    return dim % (tensor.dim() - (batch_dim is not None))


def _score_function_loo_vmap(info, in_dims, f, log_prob, dim):
    dim = _logical_dim(dim, f, in_dims[0])
    first = (batch_first(t, d, info.batch_size) for t, d in zip((f, log_prob), in_dims))
    return _score_function_loo(*first, dim + 1), 0


def _score_function_loo_backward_vmap(info, in_dims, grad, f, dim):
    dim = _logical_dim(dim, f, in_dims[1])
    grad = batch_first(grad, in_dims[0], info.batch_size).contiguous()
    f = batch_first(f, in_dims[1], info.batch_size)
    return _score_function_loo_backward(grad, f, dim + 1), 0


# stats is [6, datapoints] in the order of the flattened bound, so with the vmapped dimension
# first in the bound it is [6, batch * datapoints]: a [6, batch, datapoints] view, batched along
# dimension 1.
def _vimco_vmap(info, in_dims, log_weights, log_prob, dim):
    dim = _logical_dim(dim, log_weights, in_dims[0])
    first = (batch_first(t, d, info.batch_size) for t, d in zip((log_weights, log_prob), in_dims))
    bound, stats = _vimco(*first, dim + 1)
    return (bound, stats.view(stats.shape[0], info.batch_size, -1)), (0, 1)


def _vimco_backward_vmap(info, in_dims, grad, log_weights, stats, dim, output_mask):
    batch = info.batch_size
    dim = _logical_dim(dim, log_weights, in_dims[1])
    if in_dims[2] is None:
        stats = stats.unsqueeze(1).expand(-1, batch, -1)
    else:
        stats = stats.movedim(in_dims[2], 1)
    outputs = _vimco_backward(
        batch_first(grad, in_dims[0], batch).contiguous(),
        batch_first(log_weights, in_dims[1], batch),
        stats.reshape(stats.shape[0], -1),
        dim + 1,
        output_mask,
    )
    return outputs, tuple(0 if wanted else None for wanted in output_mask)


# --- registrations: each op's formulas, and the eager entries the code above calls ----------

# The estimators' autograd kernels are csrc/ops/score_function_autograd.cpp, the formulas of
# _score_function_loo_estimator and _vimco_estimator; these serve torch.func (see
# gradext/_custom_op.py).
_score_function_loo = with_autograd(
    "gradext::score_function_loo",
    _score_function_loo_setup_context,
    _score_function_loo_estimator,
    _score_function_loo_vmap,
    autograd_in_cpp=True,
)
_score_function_loo_backward = with_autograd(
    "gradext::_score_function_loo_backward",
    _score_function_loo_backward_setup_context,
    _score_function_loo_backward_derivative,
    _score_function_loo_backward_vmap,
)
_vimco = with_autograd(
    "gradext::vimco",
    _vimco_setup_context,
    _vimco_estimator,
    _vimco_vmap,
    autograd_in_cpp=True,
)
_vimco_backward = with_autograd(
    "gradext::_vimco_backward",
    _vimco_backward_setup_context,
    _vimco_backward_derivative,
    _vimco_backward_vmap,
)

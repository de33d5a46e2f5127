"""Fake kernels and autograd for score_function_loo, vimco and categorical_sample, and the
derivatives of their fused backward ops (double backward; see gradext/_ops/__init__.py)."""

import torch

from gradext._ops.eager import (
    batch_first,
    check_vmap_randomness,
    register_autograd,
    register_sampling_op,
)


def _reduced(values, dim):
    shape = list(values.shape)
    del shape[dim]
    return values.new_empty(shape)

def _math_dtype(dtype):
    return torch.promote_types(dtype, torch.float32)


# --- score_function_loo -------------------------------------------------------------------

@torch.library.register_fake("gradext::score_function_loo")
def _score_function_loo_fake(f, log_prob, dim):
    return _reduced(f, dim)

@torch.library.register_fake("gradext::_score_function_loo_backward")
def _score_function_loo_backward_fake(grad, f, dim):
    return torch.empty_like(f, memory_format=torch.contiguous_format)

def _loo_setup_context(ctx, inputs, output):
    f, log_prob, dim = inputs
    ctx.save_for_backward(f)  # the only tensor kept: the values (the baseline needs them all)
    ctx.dim = dim
    ctx.log_prob_dtype = log_prob.dtype

def _loo_backward(ctx, grad):
    (f,) = ctx.saved_tensors
    grad_f = grad_log_prob = None
    if ctx.needs_input_grad[0]:
        # d mean / d f_k = 1 / K for every k: a broadcast view, nothing of size K is written.
        grad_f = (grad / f.shape[ctx.dim]).unsqueeze(ctx.dim).expand(f.shape)
    if ctx.needs_input_grad[1]:
        grad_log_prob = _score_function_loo_backward(grad.contiguous(), f, ctx.dim).to(
            ctx.log_prob_dtype
        )
    return grad_f, grad_log_prob, None

# The fused backward, grad_log_prob = grad * (f_k - mean f) / (K - 1): linear in grad; the
# learning signal is a constant, so nothing flows to f.
def _loo_backward_op_setup_context(ctx, inputs, output):
    grad, f, dim = inputs
    ctx.save_for_backward(f)
    ctx.dim = dim
    ctx.grad_dtype = grad.dtype

def _loo_backward_op_derivative(ctx, grad_grad_log_prob):
    (f,) = ctx.saved_tensors
    grad_grad = None
    if ctx.needs_input_grad[0]:
        values = f.detach().to(_math_dtype(f.dtype))
        centred = values - values.mean(ctx.dim, keepdim=True)
        grad_grad = (grad_grad_log_prob.to(values.dtype) * centred).sum(ctx.dim)
        grad_grad = grad_grad.div(f.shape[ctx.dim] - 1).to(ctx.grad_dtype)
    return grad_grad, None, None

# Batching rules (vmap): the vmapped dimension goes first and the sample axis moves by one.
def _logical_dim(dim, tensor, batch_dim):
    return dim % (tensor.dim() - (batch_dim is not None))

def _loo_vmap(info, in_dims, f, log_prob, dim):
    dim = _logical_dim(dim, f, in_dims[0])
    first = (batch_first(t, d, info.batch_size) for t, d in zip((f, log_prob), in_dims))
    return score_function_loo(*first, dim + 1), 0

def _loo_backward_op_vmap(info, in_dims, grad, f, dim):
    dim = _logical_dim(dim, f, in_dims[1])
    grad = batch_first(grad, in_dims[0], info.batch_size).contiguous()
    return _score_function_loo_backward(grad, batch_first(f, in_dims[1], info.batch_size),
                                        dim + 1), 0

_score_function_loo_backward = register_autograd(
    torch.ops.gradext._score_function_loo_backward.default,
    _loo_backward_op_setup_context,
    _loo_backward_op_derivative,
    _loo_backward_op_vmap,
)
score_function_loo = register_autograd(
    torch.ops.gradext.score_function_loo.default, _loo_setup_context, _loo_backward, _loo_vmap
)


# --- vimco -----------------------------------------------------------------------------------

_VIMCO_STATS_ROWS = 5  # common/leave_one_out.h: kVimcoStatsRows


@torch.library.register_fake("gradext::vimco")
def _vimco_fake(log_weights, log_prob, dim):
    bound = _reduced(log_weights, dim)
    math_dtype = torch.promote_types(log_weights.dtype, torch.float32)
    stats = log_weights.new_empty((_VIMCO_STATS_ROWS, bound.numel()), dtype=math_dtype)
    return bound, stats

@torch.library.register_fake("gradext::_vimco_backward")
def _vimco_backward_fake(grad, log_weights, stats, dim, output_mask):
    def out(wanted):
        if wanted:
            return torch.empty_like(log_weights, memory_format=torch.contiguous_format)
        return log_weights.new_empty((0,))
    return out(output_mask[0]), out(output_mask[1])

def _vimco_setup_context(ctx, inputs, output):
    log_weights, log_prob, dim = inputs
    _, stats = output
    ctx.mark_non_differentiable(stats)
    # Kept: the log weights and 5 scalars per datapoint, so the backward is one pass.
    ctx.save_for_backward(log_weights, stats)
    ctx.dim = dim
    ctx.log_prob_dtype = log_prob.dtype
    ctx.set_materialize_grads(False)

def _vimco_backward(ctx, grad, _grad_stats):
    log_weights, stats = ctx.saved_tensors
    need_weights, need_log_prob = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
    if grad is None or not (need_weights or need_log_prob):
        return None, None, None
    grad_weights, grad_log_prob = _vimco_backward_op(
        grad.contiguous(), log_weights, stats, ctx.dim, [need_weights, need_log_prob]
    )
    return (
        grad_weights if need_weights else None,
        grad_log_prob.to(ctx.log_prob_dtype) if need_log_prob else None,
        None,
    )

# The fused backward, (grad_log_weights, grad_log_prob) = grad * (softmax(w), L - L_{-k}):
# differentiated exactly in grad and, through the softmax weights, in w; the learning signal
# L - L_{-k} is a constant.
def _vimco_backward_op_setup_context(ctx, inputs, output):
    grad, log_weights, stats, dim, output_mask = inputs
    ctx.save_for_backward(grad, log_weights, stats)
    ctx.dim = dim
    ctx.output_mask = output_mask
    ctx.set_materialize_grads(False)

def _vimco_backward_op_derivative(ctx, grad_grad_weights, grad_grad_log_prob):
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
        return None, None, None, None, None
    # The op itself with grad = 1 gives the softmax weights and the learning signals, and keeps
    # the softmax differentiable for the next order.
    softmax, signal = _vimco_backward_op(
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
    return grad_grad, grad_weights, None, None, None

# Batching rules. stats is [5, datapoints] in the order of the flattened bound, so with the
# vmapped dimension first in the bound it is [5, batch * datapoints]: a [5, batch, datapoints]
# view, batched along dimension 1.
def _vimco_vmap(info, in_dims, log_weights, log_prob, dim):
    dim = _logical_dim(dim, log_weights, in_dims[0])
    first = (batch_first(t, d, info.batch_size) for t, d in zip((log_weights, log_prob), in_dims))
    bound, stats = vimco(*first, dim + 1)
    return (bound, stats.view(stats.shape[0], info.batch_size, -1)), (0, 1)

def _vimco_backward_op_vmap(info, in_dims, grad, log_weights, stats, dim, output_mask):
    batch = info.batch_size
    dim = _logical_dim(dim, log_weights, in_dims[1])
    if in_dims[2] is None:
        stats = stats.unsqueeze(1).expand(-1, batch, -1)
    else:
        stats = stats.movedim(in_dims[2], 1)
    outputs = _vimco_backward_op(
        batch_first(grad, in_dims[0], batch).contiguous(),
        batch_first(log_weights, in_dims[1], batch),
        stats.reshape(stats.shape[0], -1),
        dim + 1,
        output_mask,
    )
    return outputs, tuple(0 if wanted else None for wanted in output_mask)

_vimco_backward_op = register_autograd(
    torch.ops.gradext._vimco_backward.default,
    _vimco_backward_op_setup_context,
    _vimco_backward_op_derivative,
    _vimco_backward_op_vmap,
)
vimco = register_autograd(
    torch.ops.gradext.vimco.default, _vimco_setup_context, _vimco_backward, _vimco_vmap
)


# --- categorical_sample ----------------------------------------------------------------------

def _categorical_output(logits, num_samples):
    shape = (num_samples, *logits.shape[:-1])
    return logits.new_empty(shape), logits.new_empty(shape, dtype=torch.int64)

@torch.library.register_fake("gradext::categorical_sample")
def _categorical_sample_fake(logits, num_samples, *, generator=None):
    return _categorical_output(logits, num_samples)

@torch.library.register_fake("gradext::_categorical_sample_seeded")
def _categorical_sample_seeded_fake(logits, num_samples, seed, offset):
    return _categorical_output(logits, num_samples)

@torch.library.register_fake("gradext::_categorical_sample_backward")
def _categorical_sample_backward_fake(grad, logits, index):
    return torch.empty_like(logits, memory_format=torch.contiguous_format)

def _categorical_setup_context(ctx, inputs, output, keyword_only_inputs=None):
    logits = inputs[0]
    _, index = output
    ctx.mark_non_differentiable(index)
    # Kept for backward: the logits (an input) and the drawn indices; the softmax is recomputed.
    ctx.save_for_backward(logits, index)
    ctx.set_materialize_grads(False)

def _make_categorical_backward(extra_nones):
    def backward(ctx, grad_log_prob, _grad_index):
        logits, index = ctx.saved_tensors
        grad_logits = None
        if ctx.needs_input_grad[0] and grad_log_prob is not None:
            grad_logits = _categorical_sample_backward(grad_log_prob.contiguous(), logits, index)
        return (grad_logits, None, *([None] * extra_nones))

    return backward

# The fused backward, grad_logits[b] = sum_s grad[s, b] * (onehot(index[s, b]) - p[b]), p the
# softmax of the logits: the exact gradient of the drawn log-probabilities, differentiated
# exactly.
def _categorical_backward_op_setup_context(ctx, inputs, output):
    ctx.save_for_backward(*inputs)  # grad, logits, index

def _categorical_backward_op_derivative(ctx, grad_grad_logits):
    grad, logits, index = ctx.saved_tensors
    math_dtype = _math_dtype(logits.dtype)
    probs = torch.softmax(logits.to(math_dtype), -1)
    u = grad_grad_logits.to(math_dtype)
    u_dot_p = (u * probs).sum(-1)
    grad_grad = grad_logits = None
    if ctx.needs_input_grad[0]:
        # d grad_logits[b] / d grad[s, b] = onehot(index[s, b]) - p[b].
        picked = u.expand(index.shape[0], *u.shape).gather(-1, index.unsqueeze(-1)).squeeze(-1)
        grad_grad = (picked - u_dot_p).to(grad.dtype)
    if ctx.needs_input_grad[1]:
        # Only p depends on the logits: d p_c / d l_j = p_c (delta_cj - p_j), times -sum_s grad.
        grad_total = grad.to(math_dtype).sum(0).unsqueeze(-1)
        grad_logits = (-grad_total * probs * (u - u_dot_p.unsqueeze(-1))).to(logits.dtype)
    return grad_grad, grad_logits, None

def _categorical_backward_op_vmap(info, in_dims, grad, logits, index):
    # grad and index are [draws, *batch]: the vmapped dimension goes right after the draws.
    batch = info.batch_size
    grad = batch_first(grad, in_dims[0], batch).movedim(0, 1).contiguous()
    index = batch_first(index, in_dims[2], batch).movedim(0, 1).contiguous()
    logits = batch_first(logits, in_dims[1], batch)
    return _categorical_sample_backward(grad, logits, index), 0

_categorical_sample_backward = register_autograd(
    torch.ops.gradext._categorical_sample_backward.default,
    _categorical_backward_op_setup_context,
    _categorical_backward_op_derivative,
    _categorical_backward_op_vmap,
)
def _categorical_vmap(info, in_dims, logits, num_samples, generator):
    # randomness="different": the op on the batched logits; its outputs are [draws, *batch],
    # so the vmapped dimension comes out right after the draws.
    check_vmap_randomness(info, "categorical_sample")
    logits = batch_first(logits, in_dims[0], info.batch_size)
    return categorical_sample(logits, num_samples, generator=generator), (1, 1)

categorical_sample = register_sampling_op(
    "categorical_sample", _categorical_setup_context, _make_categorical_backward,
    _categorical_vmap,
)

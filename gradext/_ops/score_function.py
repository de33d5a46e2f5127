"""Fake kernels and autograd for score_function_loo, vimco and categorical_sample."""

import torch

from gradext._ops.eager import eager_call


def _reduced(values, dim):
    shape = list(values.shape)
    del shape[dim]
    return values.new_empty(shape)


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
        grad_log_prob = torch.ops.gradext._score_function_loo_backward(
            grad.contiguous(), f.detach(), ctx.dim
        ).to(ctx.log_prob_dtype)
    return grad_f, grad_log_prob, None

torch.library.register_autograd(
    "gradext::score_function_loo", _loo_backward, setup_context=_loo_setup_context
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
    grad_weights, grad_log_prob = torch.ops.gradext._vimco_backward(
        grad.contiguous(), log_weights.detach(), stats, ctx.dim, [need_weights, need_log_prob]
    )
    return (
        grad_weights if need_weights else None,
        grad_log_prob.to(ctx.log_prob_dtype) if need_log_prob else None,
        None,
    )

torch.library.register_autograd("gradext::vimco", _vimco_backward, setup_context=_vimco_setup_context)


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
            grad_logits = torch.ops.gradext._categorical_sample_backward(
                grad_log_prob.contiguous(), logits.detach(), index
            )
        return (grad_logits, None, *([None] * extra_nones))

    return backward

_categorical_sample_backward = _make_categorical_backward(0)
torch.library.register_autograd(
    "gradext::categorical_sample",
    _categorical_sample_backward,
    setup_context=_categorical_setup_context,
)
torch.library.register_autograd(
    "gradext::_categorical_sample_seeded",
    _make_categorical_backward(2),
    setup_context=_categorical_setup_context,
)


# --- the public API's eager entries (gradext/_ops/eager.py) ---------------------------------

score_function_loo = eager_call(
    torch.ops.gradext.score_function_loo.default, _loo_setup_context, _loo_backward
)
vimco = eager_call(torch.ops.gradext.vimco.default, _vimco_setup_context, _vimco_backward)
categorical_sample = eager_call(
    torch.ops.gradext.categorical_sample.default,
    _categorical_setup_context,
    _categorical_sample_backward,
)

"""The categorical family: exact Categorical(softmax(logits)) samples by Gumbel-max, with the
log-probabilities of the draws, the sampling half of a discrete score-function estimator.

    index = argmax(logits + g),  g = -log(-log u)
    log_prob = log_softmax(logits)[index],  d logits = grad * (one_hot(index) - softmax(logits))

The noise is gumbel_softmax's (the same code and stream layout), so with the same seed the
index of draw 1 is gumbel_softmax(hard=True)'s argmax.

Read top to bottom: the public function; the fake kernels of the dispatcher ops
(``categorical_sample``, its seeded twin ``_categorical_sample_seeded`` and the fused backward
``_categorical_sample_backward``); the autograd formula; the derivative of the fused backward
(double backward); the vmap rules; the registrations. C++: csrc/ops/categorical.{h,cpp},
csrc/ops/cpu/categorical_*, csrc/ops/cuda/categorical_kernel.cu. Fallback:
gradext/reference/categorical.py.
"""

from __future__ import annotations

import torch

from gradext import _extension, _validation, reference
from gradext._custom_op import batch_first, check_vmap_randomness, register_fake, with_autograd


def categorical_sample(
    logits: torch.Tensor, num_samples: int = 1, *, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact Categorical(softmax(logits)) samples along the last dim, by Gumbel-max.

    Returns:
        (index, log_prob): index int64 of shape (num_samples, *logits.shape[:-1]);
        log_prob = log_softmax(logits)[index], differentiable with respect to logits (d logits
        = one_hot(index) - softmax(logits), times grad). This is the sampling half of a discrete
        score-function estimator; feed log_prob to score_function_loo or vimco.

    One fused kernel draws the Gumbel noise (the same noise code and stream layout as
    gumbel_softmax: with num_samples=1 and the same seed, index is gumbel_softmax(hard=True)'s
    argmax), takes the argmax and the log-normalizer; backward recomputes the softmax from the
    logits. Logits of -inf are never drawn while one category of the row is finite.
    """
    op = "categorical_sample"
    _validation.check_floating(op, "logits", logits)
    if logits.dim() == 0:
        raise ValueError(f"{op}: logits must have at least one dimension (the categories)")
    if not _validation.tracing() and logits.shape[-1] == 0:
        raise ValueError(
            f"{op}: logits must have at least one category, got shape {tuple(logits.shape)}"
        )
    _validation.check_row_length(op, "logits", logits.shape[-1])
    _validation.check_no_forward_ad(op, logits)
    _validation.check_count(op, "num_samples", num_samples)
    _validation.check_generator(op, generator, logits.device)
    if not _extension.uses_kernels(logits.device):
        return reference.categorical_sample(logits, num_samples, generator=generator)
    # The op returns (log_prob, index), values first as torch.max does (and as opcheck's autograd
    # test needs: it sums the outputs in order).
    log_prob, index = _categorical_sample(logits, num_samples, generator=generator)
    return index, log_prob


# --- fake kernels ---------------------------------------------------------------------------


def _log_prob_and_index(logits, num_samples):
    shape = (num_samples, *logits.shape[:-1])
    return logits.new_empty(shape), logits.new_empty(shape, dtype=torch.int64)


@register_fake("gradext::categorical_sample")
def _categorical_sample_fake(logits, num_samples, *, generator=None):
    return _log_prob_and_index(logits, num_samples)


@register_fake("gradext::_categorical_sample_seeded")
def _categorical_sample_seeded_fake(logits, num_samples, seed, offset):
    return _log_prob_and_index(logits, num_samples)


@register_fake("gradext::_categorical_sample_backward")
def _categorical_sample_backward_fake(grad, logits, index):
    return torch.empty_like(logits, memory_format=torch.contiguous_format)


# --- autograd of the sampler ----------------------------------------------------------------
# Under torch.func transforms only: elsewhere the same formula runs in C++
# (csrc/ops/categorical_autograd.cpp), which torch.func refuses.


def _sample_setup_context(ctx, inputs, output, keyword_only_inputs=None):
    logits = inputs[0]
    _, index = output
    ctx.mark_non_differentiable(index)
    # Kept for backward: the logits (an input) and the drawn indices; the softmax is recomputed.
    ctx.save_for_backward(logits, index)
    ctx.set_materialize_grads(False)


def _sample_backward(ctx, grad_log_prob, _grad_index):
    logits, index = ctx.saved_tensors
    if not ctx.needs_input_grad[0] or grad_log_prob is None:
        return (None,)
    return (_categorical_sample_backward(grad_log_prob.contiguous(), logits, index),)


# --- the derivative of the fused backward (double backward) ---------------------------------
# grad_logits[b] = sum_s grad[s, b] * (onehot(index[s, b]) - p[b]), p the softmax of the
# logits: the exact gradient of the drawn log-probabilities, differentiated exactly.


def _backward_setup_context(ctx, inputs, output):
    ctx.save_for_backward(*inputs)  # grad, logits, index


def _backward_derivative(ctx, grad_grad_logits):
    grad, logits, index = ctx.saved_tensors
    math_dtype = torch.promote_types(logits.dtype, torch.float32)
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
    return grad_grad, grad_logits


# --- vmap rules -----------------------------------------------------------------------------
# The outputs (and grad, index) are [draws, *batch]: the vmapped dimension sits right after the
# draws.


def _sample_vmap(info, in_dims, logits, num_samples, generator=None):
    check_vmap_randomness(info, "categorical_sample")
    logits = batch_first(logits, in_dims[0], info.batch_size)
    return _categorical_sample(logits, num_samples, generator=generator), (1, 1)


def _backward_vmap(info, in_dims, grad, logits, index):
    batch = info.batch_size
    grad = batch_first(grad, in_dims[0], batch).movedim(0, 1).contiguous()
    index = batch_first(index, in_dims[2], batch).movedim(0, 1).contiguous()
    logits = batch_first(logits, in_dims[1], batch)
    return _categorical_sample_backward(grad, logits, index), 0


# --- registrations: each op's formulas, and the eager entries the code above calls ----------

# The sampler's autograd kernel is csrc/ops/categorical_autograd.cpp, the formula of
# _sample_backward; these formulas serve torch.func (see gradext/_custom_op.py).
_categorical_sample = with_autograd(
    "gradext::categorical_sample",
    _sample_setup_context,
    _sample_backward,
    _sample_vmap,
    autograd_in_cpp=True,
)
with_autograd(
    "gradext::_categorical_sample_seeded",
    _sample_setup_context,
    _sample_backward,
    autograd_in_cpp=True,
)
_categorical_sample_backward = with_autograd(
    "gradext::_categorical_sample_backward",
    _backward_setup_context,
    _backward_derivative,
    _backward_vmap,
)

"""Fake kernels and autograd for gumbel_softmax and gumbel_sigmoid."""

from functools import partial

import torch

from gradext._ops.eager import (
    batch_first,
    check_vmap_randomness,
    register_autograd,
    register_sampling_op,
)


def _relaxed_output(logits, hard):
    y = torch.empty_like(logits, memory_format=torch.contiguous_format)
    y_soft = torch.empty_like(y) if hard else logits.new_empty((0,))
    return y, y_soft

for _name in ("gumbel_softmax", "gumbel_sigmoid"):

    @torch.library.register_fake(f"gradext::{_name}")
    def _relaxed_fake(logits, tau, hard, *, generator=None):
        return _relaxed_output(logits, hard)

    @torch.library.register_fake(f"gradext::_{_name}_seeded")
    def _relaxed_seeded_fake(logits, tau, hard, seed, offset):
        return _relaxed_output(logits, hard)

    @torch.library.register_fake(f"gradext::_{_name}_backward")
    def _relaxed_backward_fake(grad, y_soft, tau):
        return torch.empty_like(y_soft, memory_format=torch.contiguous_format)

def _relaxed_setup_context(ctx, inputs, output, keyword_only_inputs=None):
    tau, hard = inputs[1], inputs[2]
    y, y_soft = output
    # The one tensor kept for backward: the soft sample (the output itself when soft).
    ctx.save_for_backward(y_soft if hard else y)
    ctx.tau = tau
    ctx.hard = hard
    # The second output (y_soft) gets a gradient only in a double backward; skip autograd's
    # zero-filling for it on every first-order backward.
    ctx.set_materialize_grads(False)

def _make_relaxed_backward(name, extra_nones):
    def backward(ctx, grad_y, grad_y_soft):
        (y_soft,) = ctx.saved_tensors
        # With hard=True the saved soft sample is the second output, so a double backward that
        # differentiates the first backward's use of it sends its gradient here. Its Jacobian is
        # the soft sample's, the same one the straight-through gradient of the hard output uses.
        if ctx.hard and grad_y_soft is not None:
            grad_y = grad_y_soft if grad_y is None else grad_y + grad_y_soft
        grad_logits = None
        if ctx.needs_input_grad[0] and grad_y is not None:
            grad_logits = _backward_ops[name](grad_y.contiguous(), y_soft, ctx.tau)
        return (grad_logits, None, None, *([None] * extra_nones))

    return backward

# --- the derivatives of the fused backwards (double backward; see gradext/_ops/__init__.py) ---
# softmax: grad_logits = y * (grad - sum(grad * y)) / tau along the last dim;
# sigmoid: grad_logits = grad * y * (1 - y) / tau; y the soft sample.

def _backward_op_setup_context(ctx, inputs, output):
    grad, y_soft, tau = inputs
    ctx.save_for_backward(grad, y_soft)
    ctx.tau = tau

def _softmax_backward_in_y(grad, grad_grad, y):
    # d/dy_m of sum_i u_i y_i (g_i - <g, y>) = u_m (g_m - <g, y>) - g_m <u, y>.
    dot_gy = (grad * y).sum(-1, keepdim=True)
    return grad_grad * (grad - dot_gy) - grad * (grad_grad * y).sum(-1, keepdim=True)

def _sigmoid_backward_in_y(grad, grad_grad, y):
    return grad_grad * grad * (1 - 2 * y)

def _make_backward_op_derivative(name, backward_in_y):
    def derivative(ctx, grad_grad_logits):
        grad, y_soft = ctx.saved_tensors
        grad_grad = grad_y_soft = None
        if ctx.needs_input_grad[0]:
            # Both Jacobians are symmetric in (grad, grad_logits): the fused backward applies
            # them to the new incoming gradient.
            grad_grad = _backward_ops[name](grad_grad_logits.contiguous(), y_soft, ctx.tau)
        if ctx.needs_input_grad[1]:
            math_dtype = torch.promote_types(y_soft.dtype, torch.float32)
            grad_y_soft = backward_in_y(
                grad.to(math_dtype), grad_grad_logits.to(math_dtype), y_soft.to(math_dtype)
            ).div(ctx.tau).to(y_soft.dtype)
        return grad_grad, grad_y_soft, None

    return derivative

def _make_backward_op_vmap(name):
    # Row-wise along the last dimension: the vmapped dimension is one more row dimension.
    def rule(info, in_dims, grad, y_soft, tau):
        grad = batch_first(grad, in_dims[0], info.batch_size).contiguous()
        return _backward_ops[name](grad, batch_first(y_soft, in_dims[1], info.batch_size), tau), 0

    return rule

_backward_ops = {
    name: register_autograd(
        getattr(torch.ops.gradext, f"_{name}_backward").default,
        _backward_op_setup_context,
        _make_backward_op_derivative(name, backward_in_y),
        _make_backward_op_vmap(name),
    )
    for name, backward_in_y in (
        ("gumbel_softmax", _softmax_backward_in_y),
        ("gumbel_sigmoid", _sigmoid_backward_in_y),
    )
}


# --- the sampling ops: the public API's entries (gradext/_ops/eager.py) and registrations ---

def _make_sampling_vmap(name):
    # randomness="different": the op on the batched logits, the vmapped dimension one more row
    # dimension (the soft sample is an empty placeholder unless hard).
    def rule(info, in_dims, logits, tau, hard, generator):
        check_vmap_randomness(info, name)
        logits = batch_first(logits, in_dims[0], info.batch_size)
        outputs = _sampling_ops[name](logits, tau, hard, generator=generator)
        return outputs, (0, 0 if hard else None)

    return rule

_sampling_ops = {
    name: register_sampling_op(
        name, _relaxed_setup_context, partial(_make_relaxed_backward, name),
        _make_sampling_vmap(name),
    )
    for name in ("gumbel_softmax", "gumbel_sigmoid")
}
gumbel_softmax = _sampling_ops["gumbel_softmax"]
gumbel_sigmoid = _sampling_ops["gumbel_sigmoid"]

"""Fake kernels and autograd for gumbel_softmax and gumbel_sigmoid."""

import torch

from gradext._ops.eager import eager_call


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
    # The second output (y_soft) never receives a gradient; skip autograd's zero-filling.
    ctx.set_materialize_grads(False)

def _make_relaxed_backward(backward_op, extra_nones):
    def backward(ctx, grad_y, _grad_y_soft):
        (y_soft,) = ctx.saved_tensors
        grad_logits = None
        if ctx.needs_input_grad[0] and grad_y is not None:
            grad_logits = backward_op(grad_y.contiguous(), y_soft, ctx.tau)
        return (grad_logits, None, None, *([None] * extra_nones))

    return backward

_sample_backward = {}  # the sampling op's formula, for its registration and its eager entry
for _name in ("gumbel_softmax", "gumbel_sigmoid"):
    _backward_op = getattr(torch.ops.gradext, f"_{_name}_backward")
    _sample_backward[_name] = _make_relaxed_backward(_backward_op, 0)
    torch.library.register_autograd(
        f"gradext::{_name}",
        _sample_backward[_name],
        setup_context=_relaxed_setup_context,
    )
    torch.library.register_autograd(
        f"gradext::_{_name}_seeded",
        _make_relaxed_backward(_backward_op, 2),
        setup_context=_relaxed_setup_context,
    )


# The public API's eager entries (gradext/_ops/eager.py).
gumbel_softmax = eager_call(
    torch.ops.gradext.gumbel_softmax.default,
    _relaxed_setup_context,
    _sample_backward["gumbel_softmax"],
)
gumbel_sigmoid = eager_call(
    torch.ops.gradext.gumbel_sigmoid.default,
    _relaxed_setup_context,
    _sample_backward["gumbel_sigmoid"],
)

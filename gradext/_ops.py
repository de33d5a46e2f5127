"""Fake (meta) kernels and autograd formulas for the C++ ops in torch.ops.gradext.

The C++ library names this module (``set_python_module``), so torch imports it whenever it
needs a fake kernel; ``gradext`` imports it too. Fake kernels make the ops traceable by
torch.compile (fullgraph=True) and usable on meta tensors; autograd is attached with
torch.library.register_autograd so that it composes with AOTAutograd.
"""

from __future__ import annotations

import torch

from gradext._extension import _C

if _C is not None:

    # ---- gaussian_rsample --------------------------------------------------------------------

    def _gaussian_output(mu, logvar, num_samples):
        shape = torch.broadcast_shapes(mu.shape, logvar.shape)
        if num_samples is not None:
            shape = (num_samples, *shape)
        dtype = torch.promote_types(mu.dtype, logvar.dtype)
        z = mu.new_empty(shape, dtype=dtype)
        rng_state = mu.new_empty((2,), dtype=torch.int64)
        return z, rng_state

    @torch.library.register_fake("gradext::gaussian_rsample")
    def _gaussian_rsample_fake(mu, logvar, num_samples=None, *, generator=None):
        return _gaussian_output(mu, logvar, num_samples)

    @torch.library.register_fake("gradext::_gaussian_rsample_seeded")
    def _gaussian_rsample_seeded_fake(mu, logvar, num_samples, seed, offset):
        return _gaussian_output(mu, logvar, num_samples)

    @torch.library.register_fake("gradext::_gaussian_rsample_backward")
    def _gaussian_rsample_backward_fake(grad, logvar, rng_state, mu_size, has_sample_dim):
        return grad.new_empty(mu_size), grad.new_empty(logvar.shape)

    def _gaussian_setup_context(ctx, inputs, output, keyword_only_inputs=None):
        mu, logvar, num_samples = inputs[0], inputs[1], inputs[2]
        _, rng_state = output
        # All that backward keeps: logvar and the 2-element (seed, offset); never the noise.
        ctx.save_for_backward(logvar, rng_state)
        ctx.mu_shape = list(mu.shape)
        ctx.mu_dtype = mu.dtype
        ctx.has_sample_dim = num_samples is not None

    def _gaussian_backward(ctx, grad_z, _grad_rng_state):
        logvar, rng_state = ctx.saved_tensors
        need_mu, need_logvar = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_mu = grad_logvar = None
        if need_logvar:
            grad_mu, grad_logvar = torch.ops.gradext._gaussian_rsample_backward(
                grad_z, logvar, rng_state, ctx.mu_shape, ctx.has_sample_dim
            )
            grad_logvar = grad_logvar.to(logvar.dtype)
        elif need_mu:  # d z / d mu = 1: no noise needed, a plain reduction does it
            summed = grad_z.sum(0) if ctx.has_sample_dim else grad_z
            grad_mu = summed.sum_to_size(ctx.mu_shape)
        if need_mu:
            grad_mu = grad_mu.to(ctx.mu_dtype)
        else:
            grad_mu = None
        return grad_mu, grad_logvar

    def _gaussian_rsample_backward_formula(ctx, grad_z, grad_rng_state):
        return (*_gaussian_backward(ctx, grad_z, grad_rng_state), None)

    def _gaussian_rsample_seeded_backward_formula(ctx, grad_z, grad_rng_state):
        return (*_gaussian_backward(ctx, grad_z, grad_rng_state), None, None, None)

    torch.library.register_autograd(
        "gradext::gaussian_rsample",
        _gaussian_rsample_backward_formula,
        setup_context=_gaussian_setup_context,
    )
    torch.library.register_autograd(
        "gradext::_gaussian_rsample_seeded",
        _gaussian_rsample_seeded_backward_formula,
        setup_context=_gaussian_setup_context,
    )

    # ---- gumbel_softmax, gumbel_sigmoid ------------------------------------------------------

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

    for _name in ("gumbel_softmax", "gumbel_sigmoid"):
        _backward_op = getattr(torch.ops.gradext, f"_{_name}_backward")
        torch.library.register_autograd(
            f"gradext::{_name}",
            _make_relaxed_backward(_backward_op, 0),
            setup_context=_relaxed_setup_context,
        )
        torch.library.register_autograd(
            f"gradext::_{_name}_seeded",
            _make_relaxed_backward(_backward_op, 2),
            setup_context=_relaxed_setup_context,
        )

    @torch.library.register_fake("gradext::_philox_uniform")
    def _philox_uniform_fake(like, seed, offset):
        return like.new_empty(like.shape, dtype=torch.float64)

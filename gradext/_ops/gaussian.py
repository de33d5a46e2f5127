"""Fake kernels and autograd for gaussian_rsample and its seeded/backward ops."""

import torch

from gradext._ops.eager import eager_call


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
def _gaussian_rsample_backward_fake(grad, logvar, rng_state, mu_size, has_sample_dim,
                                    need_grad_mu):
    return grad.new_empty(mu_size if need_grad_mu else (0,)), grad.new_empty(logvar.shape)

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
    # d z / d mu = 1: grad_mu is grad summed over the samples and broadcast dimensions. With one
    # sample that needs no kernel (grad itself when mu has z's shape), so the fused kernel sums
    # grad_mu only for K > 1 samples, where it shares the pass over grad with grad_logvar.
    one_sample = not ctx.has_sample_dim or grad_z.shape[0] == 1
    if need_logvar:
        grad_mu, grad_logvar = torch.ops.gradext._gaussian_rsample_backward(
            grad_z, logvar, rng_state, ctx.mu_shape, ctx.has_sample_dim,
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


# The public API's eager entry (gradext/_ops/eager.py): the same formulas, without the
# registration's per-call Python hops.
gaussian_rsample = eager_call(
    torch.ops.gradext.gaussian_rsample.default,
    _gaussian_setup_context,
    _gaussian_rsample_backward_formula,
)

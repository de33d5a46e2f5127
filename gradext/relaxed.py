"""The relaxed family: relaxation gradients of discrete latents, Gumbel-Softmax (Concrete)
and Gumbel-sigmoid (binary Concrete), soft or straight-through hard.

    soft:  y = softmax((logits + g) / tau),  g = -log(-log u)          (gumbel_softmax)
           y = sigmoid((logits + L) / tau),  L = log u - log(1 - u)    (gumbel_sigmoid)
    hard:  the exact one-hot of argmax(logits + g) (or 1[logits + L > 0]) in the forward, the
           soft sample's gradient in the backward (straight-through)

The fused ops keep one tensor of the logits' size for backward: the soft sample.

Read top to bottom: the public functions and their argument checks; the fake kernels of the
dispatcher ops (each sampler, its seeded twin ``_<op>_seeded`` and its fused backward
``_<op>_backward``); the autograd formula of the samplers; the derivatives of the fused
backwards (double backward); the vmap rules; the registrations. C++: csrc/ops/relaxed.{h,cpp},
csrc/ops/cpu/relaxed_*, csrc/ops/cuda/relaxed_kernel.cu. Fallback: gradext/reference/relaxed.py.
"""

from __future__ import annotations

import torch

from gradext import _extension, _validation, reference
from gradext._custom_op import batch_first, check_vmap_randomness, register_fake, with_autograd
from gradext._temperature import check_tau, learned_temperature, tau_tensor


def gumbel_softmax(
    logits: torch.Tensor,
    tau: float = 1.0,
    hard: bool = False,
    eps: float = 1e-10,
    dim: int = -1,
    *,
    num_samples=None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Drop-in for torch.nn.functional.gumbel_softmax: same signature and semantics (``eps`` is
    accepted and ignored, as there), plus ``generator=`` and ``num_samples=`` (None, K samples
    on a new leading dim, or a sample_shape tuple, as the other samplers).

    Soft: y = softmax((logits + g) / tau, dim), g ~ Gumbel(0, 1). Hard (straight-through): the
    forward value is the exact one-hot of argmax(logits + g) (every element exactly 0.0 or 1.0;
    argmax(logits + g) is an exact Categorical(softmax(logits)) sample), the gradient is the soft
    sample's, d logits = y * (grad - sum(grad * y, dim)) / tau. Never NaN or inf from the noise;
    logits of -inf (masked categories) get probability 0 and are never selected while one
    category of the slice is finite. tau <= 0 is a ValueError (PyTorch returns NaN). tau may be a
    number or, as in PyTorch, a one-element tensor. Numbers and tensors without grad go through
    the kernels; a learned temperature (a tensor that requires grad) runs the pure-PyTorch path,
    which differentiates with respect to it.

    The kernels fuse noise, softmax, argmax and one-hot in one pass per row and keep one tensor
    of the logits' size for backward (the soft sample). Inside torch.compile use the default
    generator (dynamo cannot trace torch.Generator objects).
    """
    op = "gumbel_softmax"
    _validation.check_floating(op, "logits", logits)
    tau_value = check_tau(op, tau)
    hard = _validation.as_bool(op, "hard", hard)
    if logits.dim() == 0:
        raise ValueError(f"{op}: logits must have at least one dimension (the categories)")
    dim = _validation.as_dim(op, dim, "logits", logits)
    _validation.check_no_forward_ad(op, logits, tau)
    _validation.check_row_length(op, "logits", logits.shape[dim])
    _validation.check_generator(op, generator, logits.device)
    num_samples, sample_dims = _validation.sample_count(op, num_samples)
    if num_samples is None:
        return _gumbel_softmax_checked(logits, tau, tau_value, hard, dim, generator)
    y = _gumbel_softmax_checked(
        _repeated(logits, num_samples), tau, tau_value, hard, dim % logits.dim() + 1, generator
    )
    return _validation.with_sample_dims(y, sample_dims)


def _gumbel_softmax_checked(logits, tau, tau_value, hard, dim, generator):
    """gumbel_softmax once its arguments are checked (tau_value is tau's float)."""
    if learned_temperature(tau):
        return reference.gumbel_softmax(logits, tau, hard, dim=dim, generator=generator)
    if not _extension.uses_kernels(logits.device):
        return reference.gumbel_softmax(logits, tau_value, hard, dim=dim, generator=generator)
    if dim % logits.dim() == logits.dim() - 1:  # the common case; a view costs microseconds
        y, _ = _gumbel_softmax(logits, tau_tensor(tau_value), hard, generator=generator)
        return y
    rows = logits.movedim(dim, -1)  # the kernels work along the last (contiguous) dimension
    y, _ = _gumbel_softmax(rows, tau_tensor(tau_value), hard, generator=generator)
    return y.movedim(-1, dim)


def gumbel_sigmoid(
    logits: torch.Tensor,
    tau: float = 1.0,
    hard: bool = False,
    *,
    num_samples=None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The binary Concrete (relaxed Bernoulli) sample y = sigmoid((logits + L) / tau), with
    logistic noise L = log u - log(1 - u). Hard: exact 0/1 (1 where logits + L > 0, an exact
    Bernoulli(sigmoid(logits)) sample) with the straight-through gradient of the soft sample,
    d logits = grad * y * (1 - y) / tau. One fused elementwise kernel each way. tau as in
    gumbel_softmax (a number or a one-element tensor; a learned one runs the pure-PyTorch path).
    num_samples as gumbel_softmax's."""
    op = "gumbel_sigmoid"
    _validation.check_floating(op, "logits", logits)
    tau_value = check_tau(op, tau)
    hard = _validation.as_bool(op, "hard", hard)
    _validation.check_no_forward_ad(op, logits, tau)
    _validation.check_generator(op, generator, logits.device)
    num_samples, sample_dims = _validation.sample_count(op, num_samples)
    if num_samples is None:
        return _gumbel_sigmoid_checked(logits, tau, tau_value, hard, generator)
    y = _gumbel_sigmoid_checked(_repeated(logits, num_samples), tau, tau_value, hard, generator)
    return _validation.with_sample_dims(y, sample_dims)


def _gumbel_sigmoid_checked(logits, tau, tau_value, hard, generator):
    """gumbel_sigmoid once its arguments are checked (tau_value is tau's float)."""
    if learned_temperature(tau):
        return reference.gumbel_sigmoid(logits, tau, hard, generator=generator)
    if not _extension.uses_kernels(logits.device):
        return reference.gumbel_sigmoid(logits, tau_value, hard, generator=generator)
    y, _ = _gumbel_sigmoid(logits, tau_tensor(tau_value), hard, generator=generator)
    return y


def _repeated(logits: torch.Tensor, count: int) -> torch.Tensor:
    """The logits of `count` samples on a new leading dim (each sample its own noise; the
    gradient sums over them through the expansion)."""
    return logits.expand(count, *logits.shape)


# --- fake kernels ---------------------------------------------------------------------------


def _sample_and_soft_sample(logits, hard):
    y = torch.empty_like(logits, memory_format=torch.contiguous_format)
    y_soft = torch.empty_like(y) if hard else logits.new_empty((0,))
    return y, y_soft


@register_fake("gradext::gumbel_softmax")
def _gumbel_softmax_fake(logits, tau, hard, *, generator=None):
    return _sample_and_soft_sample(logits, hard)


@register_fake("gradext::_gumbel_softmax_seeded")
def _gumbel_softmax_seeded_fake(logits, tau, hard, seed, offset):
    return _sample_and_soft_sample(logits, hard)


@register_fake("gradext::_gumbel_softmax_backward")
def _gumbel_softmax_backward_fake(grad, y_soft, tau):
    return torch.empty_like(y_soft, memory_format=torch.contiguous_format)


@register_fake("gradext::gumbel_sigmoid")
def _gumbel_sigmoid_fake(logits, tau, hard, *, generator=None):
    return _sample_and_soft_sample(logits, hard)


@register_fake("gradext::_gumbel_sigmoid_seeded")
def _gumbel_sigmoid_seeded_fake(logits, tau, hard, seed, offset):
    return _sample_and_soft_sample(logits, hard)


@register_fake("gradext::_gumbel_sigmoid_backward")
def _gumbel_sigmoid_backward_fake(grad, y_soft, tau):
    return torch.empty_like(y_soft, memory_format=torch.contiguous_format)


# --- autograd of the samplers ---------------------------------------------------------------
# Under torch.func transforms only: elsewhere the same formula runs in C++
# (csrc/ops/relaxed_autograd.cpp), which torch.func refuses.


def _sample_setup_context(ctx, inputs, output, keyword_only_inputs=None):
    tau, hard = inputs[1], inputs[2]
    y, y_soft = output
    # The one tensor kept for backward: the soft sample (the output itself when soft).
    ctx.save_for_backward(y_soft if hard else y)
    ctx.tau = tau
    ctx.hard = hard
    # The second output (y_soft) gets a gradient only in a double backward; skip autograd's
    # zero-filling for it on every first-order backward.
    ctx.set_materialize_grads(False)


def _incoming_gradient(ctx, grad_y, grad_y_soft):
    # With hard=True the saved soft sample is the second output, so a double backward that
    # differentiates the first backward's use of it sends its gradient here. Its Jacobian is the
    # soft sample's, the same one the straight-through gradient of the hard output uses.
    if ctx.hard and grad_y_soft is not None:
        return grad_y_soft if grad_y is None else grad_y + grad_y_soft
    return grad_y


def _sample_backward(ctx, grad_y, grad_y_soft, fused_backward):
    (y_soft,) = ctx.saved_tensors
    grad_y = _incoming_gradient(ctx, grad_y, grad_y_soft)
    if not ctx.needs_input_grad[0] or grad_y is None:
        return (None,)
    return (fused_backward(grad_y.contiguous(), y_soft, ctx.tau),)


def _gumbel_softmax_sample_backward(ctx, grad_y, grad_y_soft):
    return _sample_backward(ctx, grad_y, grad_y_soft, _gumbel_softmax_backward)


def _gumbel_sigmoid_sample_backward(ctx, grad_y, grad_y_soft):
    return _sample_backward(ctx, grad_y, grad_y_soft, _gumbel_sigmoid_backward)


# --- the derivatives of the fused backwards (double backward) --------------------------------
# softmax: grad_logits = y * (grad - sum(grad * y)) / tau along the last dim;
# sigmoid: grad_logits = grad * y * (1 - y) / tau; y the soft sample. Both Jacobians are
# symmetric in (grad, grad_logits), so the fused backward applies them to the new incoming
# gradient; the derivative in y is written out below.


def _backward_setup_context(ctx, inputs, output):
    grad, y_soft, tau = inputs
    ctx.save_for_backward(grad, y_soft)
    ctx.tau = tau


def _derivative_in_y(ctx, grad_grad_logits, in_y):
    grad, y_soft = ctx.saved_tensors
    math_dtype = torch.promote_types(y_soft.dtype, torch.float32)
    grad_y = in_y(grad.to(math_dtype), grad_grad_logits.to(math_dtype), y_soft.to(math_dtype))
    return grad_y.div(ctx.tau).to(y_soft.dtype)


def _softmax_backward_in_y(grad, grad_grad, y):
    # d/dy_m of sum_i u_i y_i (g_i - <g, y>) = u_m (g_m - <g, y>) - g_m <u, y>.
    dot_gy = (grad * y).sum(-1, keepdim=True)
    return grad_grad * (grad - dot_gy) - grad * (grad_grad * y).sum(-1, keepdim=True)


def _sigmoid_backward_in_y(grad, grad_grad, y):
    return grad_grad * grad * (1 - 2 * y)


def _backward_derivative(ctx, grad_grad_logits, fused_backward, in_y):
    grad_grad = grad_y_soft = None
    if ctx.needs_input_grad[0]:
        grad_grad = fused_backward(grad_grad_logits.contiguous(), ctx.saved_tensors[1], ctx.tau)
    if ctx.needs_input_grad[1]:
        grad_y_soft = _derivative_in_y(ctx, grad_grad_logits, in_y)
    return grad_grad, grad_y_soft


def _gumbel_softmax_backward_derivative(ctx, grad_grad_logits):
    return _backward_derivative(
        ctx, grad_grad_logits, _gumbel_softmax_backward, _softmax_backward_in_y
    )


def _gumbel_sigmoid_backward_derivative(ctx, grad_grad_logits):
    return _backward_derivative(
        ctx, grad_grad_logits, _gumbel_sigmoid_backward, _sigmoid_backward_in_y
    )


# --- vmap rules -----------------------------------------------------------------------------
# Every op here is row-wise along the last dimension (or elementwise), so the vmapped dimension
# is one more row dimension. Samplers: randomness="different", the op on the batched logits
# (the soft sample is an empty placeholder unless hard).


def _gumbel_softmax_vmap(info, in_dims, logits, tau, hard, generator=None):
    check_vmap_randomness(info, "gumbel_softmax")
    logits = batch_first(logits, in_dims[0], info.batch_size)
    return _gumbel_softmax(logits, tau, hard, generator=generator), (0, 0 if hard else None)


def _gumbel_sigmoid_vmap(info, in_dims, logits, tau, hard, generator=None):
    check_vmap_randomness(info, "gumbel_sigmoid")
    logits = batch_first(logits, in_dims[0], info.batch_size)
    return _gumbel_sigmoid(logits, tau, hard, generator=generator), (0, 0 if hard else None)


def _gumbel_softmax_backward_vmap(info, in_dims, grad, y_soft, tau):
    grad = batch_first(grad, in_dims[0], info.batch_size).contiguous()
    y_soft = batch_first(y_soft, in_dims[1], info.batch_size)
    return _gumbel_softmax_backward(grad, y_soft, tau), 0


def _gumbel_sigmoid_backward_vmap(info, in_dims, grad, y_soft, tau):
    grad = batch_first(grad, in_dims[0], info.batch_size).contiguous()
    y_soft = batch_first(y_soft, in_dims[1], info.batch_size)
    return _gumbel_sigmoid_backward(grad, y_soft, tau), 0


# --- registrations: each op's formulas, and the eager entries the code above calls ----------

# The samplers' autograd kernel is csrc/ops/relaxed_autograd.cpp, the formula of
# _sample_backward; these formulas serve torch.func (see gradext/_custom_op.py).
_gumbel_softmax = with_autograd(
    "gradext::gumbel_softmax",
    _sample_setup_context,
    _gumbel_softmax_sample_backward,
    _gumbel_softmax_vmap,
    autograd_in_cpp=True,
)
with_autograd(
    "gradext::_gumbel_softmax_seeded",
    _sample_setup_context,
    _gumbel_softmax_sample_backward,
    autograd_in_cpp=True,
)
_gumbel_softmax_backward = with_autograd(
    "gradext::_gumbel_softmax_backward",
    _backward_setup_context,
    _gumbel_softmax_backward_derivative,
    _gumbel_softmax_backward_vmap,
)
_gumbel_sigmoid = with_autograd(
    "gradext::gumbel_sigmoid",
    _sample_setup_context,
    _gumbel_sigmoid_sample_backward,
    _gumbel_sigmoid_vmap,
    autograd_in_cpp=True,
)
with_autograd(
    "gradext::_gumbel_sigmoid_seeded",
    _sample_setup_context,
    _gumbel_sigmoid_sample_backward,
    autograd_in_cpp=True,
)
_gumbel_sigmoid_backward = with_autograd(
    "gradext::_gumbel_sigmoid_backward",
    _backward_setup_context,
    _gumbel_sigmoid_backward_derivative,
    _gumbel_sigmoid_backward_vmap,
)

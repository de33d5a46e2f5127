"""The conditional_relaxation family: the fused primitive of REBAR and RELAX (Tucker et al. 2017;
Grathwohl et al. 2018), a discrete sample with two relaxations of its noise.

    z = logits + noise            (logistic noise: Bernoulli; Gumbel noise: categorical)
    b = H(z)                      (1[z > 0], or the one-hot of argmax z)
    soft = sigmoid(z / tau)       (softmax(z / tau) for categorical)
    soft_cond = the same relaxation of z_tilde ~ p(z | b), from noise of its own

The fused ops keep nothing of the samples' size for backward: the forward returns its Philox
(seed, offset) as a 2-element ``rng_state`` and the backward draws both noises again from it.

Read top to bottom: the public function and its argument checks; the fake kernels of the
dispatcher ops (``conditional_relaxation``, its seeded twin, ``_conditional_relaxation_noise``
that draws a forward's noises again, the fused ``_conditional_relaxation_backward`` and the
Jacobian-vector product ``_conditional_relaxation_jvp``); the autograd formula of the sampler;
the derivatives of the backward and JVP ops (double backward); the vmap rules; the
registrations. C++: csrc/ops/conditional_relaxation.{h,cpp},
csrc/ops/cpu/conditional_relaxation_*, csrc/ops/cuda/conditional_relaxation_kernel.cu; the maths
in csrc/common/conditional_relaxation.h. Fallback: gradext/reference/conditional_relaxation.py.
"""

from __future__ import annotations

import torch

from gradext import _extension, _validation, reference
from gradext._custom_op import batch_first, check_vmap_randomness, register_fake, with_autograd
from gradext._temperature import check_tau, learned_temperature, tau_tensor
from gradext.reference.conditional_relaxation import relaxations_from_noise


def conditional_relaxation(
    logits: torch.Tensor,
    tau: float = 1.0,
    *,
    categorical: bool = False,
    dim: int = -1,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A discrete sample and two relaxations of it: ``b, soft, soft_cond``.

    Args:
        logits: Bernoulli logits (``categorical=False``: every element its own variable) or
            categorical logits along ``dim`` (-inf masks a category).
        tau: the relaxations' temperature, a number > 0 or a one-element tensor; one that
            requires grad (a learned temperature) runs the pure-PyTorch path, which
            differentiates with respect to it.
        categorical: Gumbel noise and a softmax along ``dim`` instead of logistic noise and a
            sigmoid per element.
        generator: the ``torch.Generator`` to draw from (``None``: the default one).

    Returns, in the logits' dtype and shape:
        b: the exact discrete sample H(z), z = logits + noise: 0./1. (Bernoulli(sigmoid(logits)))
            or the one-hot of argmax z along ``dim`` (Categorical(softmax(logits))); no gradient.
        soft: sigmoid(z / tau) or softmax(z / tau): the relaxation of the same noise, so
            that b is what soft rounds to (soft > 1/2, or its argmax).
        soft_cond: the same relaxation of z_tilde ~ p(z | b), REBAR's conditional
            reparameterization, drawn from noise of its own: H(z_tilde) = b always.

    soft and soft_cond are differentiable in logits; with a seeded generator the triple is a
    smooth function of the logits wherever b does not flip. The fused kernels draw both noises
    from one Philox (seed, offset) and the backward draws them again: autograd keeps the logits
    and two integers. A slice of logits with a NaN, a +inf or no finite value gives NaN in all
    three outputs.
    """
    op = "conditional_relaxation"
    _validation.check_floating(op, "logits", logits)
    tau_value = check_tau(op, tau)
    categorical = _validation.as_bool(op, "categorical", categorical)
    if categorical:
        if logits.dim() == 0:
            raise ValueError(
                f"{op}: categorical logits must have at least one dimension (the categories)"
            )
        dim = _validation.as_dim(op, dim, "logits", logits)
        _validation.check_row_length(op, "logits", logits.shape[dim])
    _validation.check_no_forward_ad(op, logits, tau)
    _validation.check_generator(op, generator, logits.device)
    if learned_temperature(tau):
        return reference.conditional_relaxation(
            logits, tau, categorical=categorical, dim=dim, generator=generator
        )
    if not _extension.uses_kernels(logits.device):
        return reference.conditional_relaxation(
            logits, tau_value, categorical=categorical, dim=dim, generator=generator
        )
    moved = categorical and dim % logits.dim() != logits.dim() - 1
    rows = logits.movedim(dim, -1) if moved else logits  # the kernels work along the last dim
    b, soft, soft_cond, _ = _conditional_relaxation(
        rows, tau_tensor(tau_value), categorical, generator=generator
    )
    if moved:
        return b.movedim(-1, dim), soft.movedim(-1, dim), soft_cond.movedim(-1, dim)
    return b, soft, soft_cond


# --- fake kernels ---------------------------------------------------------------------------


def _samples_and_state(logits):
    like = torch.empty_like(logits, memory_format=torch.contiguous_format)
    return (
        like,
        torch.empty_like(like),
        torch.empty_like(like),
        logits.new_empty((2,), dtype=torch.int64),
    )


def _noise_dtype(dtype):
    return torch.float64 if dtype == torch.float64 else torch.float32


@register_fake("gradext::conditional_relaxation")
def _conditional_relaxation_fake(logits, tau, categorical, *, generator=None):
    return _samples_and_state(logits)


@register_fake("gradext::_conditional_relaxation_seeded")
def _conditional_relaxation_seeded_fake(logits, tau, categorical, seed, offset):
    return _samples_and_state(logits)


@register_fake("gradext::_conditional_relaxation_noise")
def _conditional_relaxation_noise_fake(logits, rng_state, categorical):
    dtype = _noise_dtype(logits.dtype)
    return logits.new_empty(logits.shape, dtype=dtype), logits.new_empty(logits.shape, dtype=dtype)


@register_fake("gradext::_conditional_relaxation_backward")
def _conditional_relaxation_backward_fake(
    grad_soft, grad_soft_cond, logits, tau, rng_state, categorical
):
    return torch.empty_like(logits, memory_format=torch.contiguous_format)


@register_fake("gradext::_conditional_relaxation_jvp")
def _conditional_relaxation_jvp_fake(tangent, logits, tau, rng_state, categorical):
    like = torch.empty_like(logits, memory_format=torch.contiguous_format)
    return like, torch.empty_like(like)


# --- autograd of the sampler (conditional_relaxation, _seeded) ------------------------------
# Under torch.func transforms only: elsewhere the same formula runs in C++
# (csrc/ops/conditional_relaxation_autograd.cpp), which torch.func refuses.


def _sample_setup_context(ctx, inputs, output, keyword_only_inputs=None):
    logits, tau, categorical = inputs[0], inputs[1], inputs[2]
    b, _, _, rng_state = output
    ctx.save_for_backward(logits, tau, rng_state)
    ctx.categorical = categorical
    ctx.mark_non_differentiable(b, rng_state)
    # One relaxation may get no gradient: no zero-filled tensor is made for it.
    ctx.set_materialize_grads(False)


def _contiguous(grad):
    return None if grad is None else grad.contiguous()


def _sample_backward(ctx, _grad_b, grad_soft, grad_soft_cond, _grad_rng_state):
    logits, tau, rng_state = ctx.saved_tensors
    if not ctx.needs_input_grad[0] or (grad_soft is None and grad_soft_cond is None):
        return (None,)
    grad_logits = _conditional_relaxation_backward(
        _contiguous(grad_soft), _contiguous(grad_soft_cond), logits, tau, rng_state, ctx.categorical
    )
    return (grad_logits,)


# --- the derivatives of the fused backward and of the JVP (double backward) -----------------
# The fused backward is B(g_s, g_c, x) = J_s^T g_s + J_c^T g_c, J the Jacobians of soft and
# soft_cond in the logits x at the forward's noise; the JVP op is J(v, x) = (J_s v, J_c v). Each
# is linear in its incoming vectors, and its derivative there is the other: d<B, u> / d g =
# J u (the JVP op), d<J v, (a, b)> / d v = B(a, b). Their derivatives in the logits (second
# derivatives of softplus, sigmoid and softmax chains) are taken by torch.func on the reference
# formula of the same noise, drawn again from rng_state in the math type, only when asked for.


def _backward_setup_context(ctx, inputs, output):
    grad_soft, grad_soft_cond, logits, tau, rng_state, categorical = inputs
    ctx.save_for_backward(grad_soft, grad_soft_cond, logits, tau, rng_state)
    ctx.categorical = categorical


def _relaxations_of_the_same_noise(logits, tau, rng_state, categorical):
    """x -> (soft, soft_cond) of the forward's noise in the math type, for torch.func."""
    with torch.no_grad():
        noise, cond_noise = _conditional_relaxation_noise(logits.detach(), rng_state, categorical)
    # tau as the tensor it is (not its value): AOTAutograd traces this formula symbolically.
    tau = tau.detach()

    def relaxations(x):
        _, soft, soft_cond = relaxations_from_noise(x, noise, cond_noise, tau, categorical)
        return soft, soft_cond

    return relaxations, noise.dtype


def _backward_in_logits(grad_soft, grad_soft_cond, logits, tau, rng_state, categorical, cotangent):
    """d <B(g_s, g_c, x), cotangent> / d x."""
    relaxations, math_dtype = _relaxations_of_the_same_noise(logits, tau, rng_state, categorical)

    def as_math(grad):
        return torch.zeros_like(logits, dtype=math_dtype) if grad is None else grad.to(math_dtype)

    def fused_backward(x):
        _, vjp = torch.func.vjp(relaxations, x)
        return vjp((as_math(grad_soft), as_math(grad_soft_cond)))[0]

    _, vjp = torch.func.vjp(fused_backward, logits.to(math_dtype))
    return vjp(cotangent.to(math_dtype))[0].to(logits.dtype)


def _engine_needs(needs_input_grad: bool, tensor: torch.Tensor) -> bool:
    """Whether the running backward uses the gradient of `tensor`: ctx.needs_input_grad says
    only that it requires grad. Variance tuning (variance_loss) differentiates the estimator
    in a control variate's parameters alone, and the logits' term of a derivative here costs
    torch.func's nested transforms: asked of the engine, it is skipped where unused."""
    if not needs_input_grad:
        return False
    try:
        node = torch.autograd.graph.get_gradient_edge(tensor).node
        return bool(torch._C._will_engine_execute_node(node))
    except (RuntimeError, AttributeError):  # not inside the engine (tracing): assume used
        return True


def _backward_derivative(ctx, grad_grad_logits):
    grad_soft, grad_soft_cond, logits, tau, rng_state = ctx.saved_tensors
    d_soft = d_cond = d_logits = None
    wanted_soft = grad_soft is not None and ctx.needs_input_grad[0]
    wanted_cond = grad_soft_cond is not None and ctx.needs_input_grad[1]
    if wanted_soft or wanted_cond:
        d_soft, d_cond = _conditional_relaxation_jvp(
            grad_grad_logits.contiguous(), logits, tau, rng_state, ctx.categorical
        )
    if _engine_needs(ctx.needs_input_grad[2], logits):
        d_logits = _backward_in_logits(
            grad_soft, grad_soft_cond, logits, tau, rng_state, ctx.categorical, grad_grad_logits
        )
    return (d_soft if wanted_soft else None), (d_cond if wanted_cond else None), d_logits


def _jvp_setup_context(ctx, inputs, output):
    tangent, logits, tau, rng_state, categorical = inputs
    ctx.save_for_backward(tangent, logits, tau, rng_state)
    ctx.categorical = categorical
    ctx.set_materialize_grads(False)


def _jvp_derivative(ctx, grad_soft, grad_soft_cond):
    tangent, logits, tau, rng_state = ctx.saved_tensors
    if grad_soft is None and grad_soft_cond is None:
        return None, None
    d_tangent = d_logits = None
    if ctx.needs_input_grad[0]:
        d_tangent = _conditional_relaxation_backward(
            _contiguous(grad_soft),
            _contiguous(grad_soft_cond),
            logits,
            tau,
            rng_state,
            ctx.categorical,
        )
    if _engine_needs(ctx.needs_input_grad[1], logits):
        relaxations, math_dtype = _relaxations_of_the_same_noise(
            logits, tau, rng_state, ctx.categorical
        )

        def jvp(x):
            return torch.func.jvp(relaxations, (x,), (tangent.to(math_dtype),))[1]

        def as_math(grad):
            return (
                torch.zeros_like(logits, dtype=math_dtype) if grad is None else grad.to(math_dtype)
            )

        _, vjp = torch.func.vjp(jvp, logits.to(math_dtype))
        d_logits = vjp((as_math(grad_soft), as_math(grad_soft_cond)))[0].to(logits.dtype)
    return d_tangent, d_logits


# --- vmap rules -----------------------------------------------------------------------------
# The sampler's rule calls it once on the batched logits (randomness="different": every example
# its own noise, that of the batched call) and returns the one rng_state unbatched. The rules of
# the noise and backward ops tell the two ways they meet a batch apart by the logits: batched
# logits come from such a batched forward, whose noise layout the batched call repeats;
# unbatched logits are one forward's, met with a batch of cotangents (jacrev), each reduced
# against the same noise in turn.


def _sample_vmap(info, in_dims, logits, tau, categorical, generator=None):
    check_vmap_randomness(info, "conditional_relaxation")
    logits = batch_first(logits, in_dims[0], info.batch_size)
    outputs = _conditional_relaxation(logits, tau, categorical, generator=generator)
    return outputs, (0, 0, 0, None)


def _noise_vmap(info, in_dims, logits, rng_state, categorical):
    if in_dims[0] is None:
        return _conditional_relaxation_noise(logits, rng_state, categorical), (None, None)
    logits = batch_first(logits, in_dims[0], info.batch_size)
    return _conditional_relaxation_noise(logits, rng_state, categorical), (0, 0)


def _optional_batch_first(grad, batch_dim, batch_size):
    return None if grad is None else batch_first(grad, batch_dim, batch_size).contiguous()


def _select(tensor, batch_dim, index):
    if tensor is None or batch_dim is None:
        return tensor
    return tensor.select(batch_dim, index).contiguous()


def _backward_vmap(info, in_dims, grad_soft, grad_soft_cond, logits, tau, rng_state, categorical):
    batch = info.batch_size
    if in_dims[2] is not None:  # a batched forward's noise: one call on the batched tensors
        grad = _conditional_relaxation_backward(
            _optional_batch_first(grad_soft, in_dims[0], batch),
            _optional_batch_first(grad_soft_cond, in_dims[1], batch),
            batch_first(logits, in_dims[2], batch),
            tau,
            rng_state,
            categorical,
        )
        return grad, 0
    grads = [
        _conditional_relaxation_backward(
            _select(grad_soft, in_dims[0], example),
            _select(grad_soft_cond, in_dims[1], example),
            logits,
            tau,
            rng_state,
            categorical,
        )
        for example in range(batch)
    ]
    return torch.stack(grads), 0


def _jvp_vmap(info, in_dims, tangent, logits, tau, rng_state, categorical):
    batch = info.batch_size
    if in_dims[1] is not None:  # a batched forward's noise: one call on the batched tensors
        tangent = batch_first(tangent, in_dims[0], batch).contiguous()
        logits = batch_first(logits, in_dims[1], batch)
        return _conditional_relaxation_jvp(tangent, logits, tau, rng_state, categorical), (0, 0)
    outputs = [
        _conditional_relaxation_jvp(
            _select(tangent, in_dims[0], example), logits, tau, rng_state, categorical
        )
        for example in range(batch)
    ]
    return (torch.stack([o[0] for o in outputs]), torch.stack([o[1] for o in outputs])), (0, 0)


# --- registrations: each op's formulas, and the eager entries the code above calls ----------

# The sampler's autograd kernel is csrc/ops/conditional_relaxation_autograd.cpp, the formula of
# _sample_backward; these formulas serve torch.func (see gradext/_custom_op.py).
_conditional_relaxation = with_autograd(
    "gradext::conditional_relaxation",
    _sample_setup_context,
    _sample_backward,
    _sample_vmap,
    autograd_in_cpp=True,
)
with_autograd(
    "gradext::_conditional_relaxation_seeded",
    _sample_setup_context,
    _sample_backward,
    autograd_in_cpp=True,
)
_conditional_relaxation_backward = with_autograd(
    "gradext::_conditional_relaxation_backward",
    _backward_setup_context,
    _backward_derivative,
    _backward_vmap,
)
_conditional_relaxation_jvp = with_autograd(
    "gradext::_conditional_relaxation_jvp",
    _jvp_setup_context,
    _jvp_derivative,
    _jvp_vmap,
)
_conditional_relaxation_noise = with_autograd(
    "gradext::_conditional_relaxation_noise",
    lambda ctx, inputs, output: None,
    lambda ctx, *grads: (None,),
    _noise_vmap,
)

"""Gradients of gradients (create_graph=True) through every op.

Three independent checks of the derivatives of the fused backward ops (registered in the
family modules of gradext/_ops; the convention is in gradext/_ops/__init__.py):
- second (and, for the Gaussian and VIMCO, third) derivatives through the kernels equal
  autograd's on the pure-PyTorch reference with the same noise, in float64;
- gradgradcheck (finite differences) of the ops whose gradient is the derivative of their value
  (the pathwise samples with a fixed seed, the categorical log-probabilities);
- gradcheck of each backward op on its own, in the inputs where it is differentiated exactly.
"""

from __future__ import annotations

import warnings

import pytest
import torch

import gradext
from gradext import reference
from conftest import requires_extension
from gaussian_helpers import noise, run_with_state
from op_cases import OPS, function_through

F64 = dict(dtype=torch.float64)
TIGHT = dict(rtol=1e-10, atol=1e-10)


def _seeded(seed=7, device="cpu"):
    return torch.Generator(device=device).manual_seed(seed)


def _second_order(fn, inputs, order=2):
    """Derivatives of order `order` of a fixed scalar built from fn(*inputs).

    The first loss is nonlinear in the output, so the incoming gradient of the op depends on its
    output and every derivative of the backward op takes part; each later loss is a fixed
    nonlinear function of the previous gradients."""
    out = fn(*inputs)
    weights = torch.linspace(-1.0, 2.0, out.numel(), dtype=out.dtype, device=out.device)
    loss = (weights.view(out.shape) * out + 0.3 * out**3).sum()
    for step in range(1, order + 1):
        grads = torch.autograd.grad(loss, inputs, create_graph=step < order, allow_unused=True)
        if step == order:
            return grads
        loss = sum((torch.sin(g) * (1.0 + i) + 0.5 * g**2).sum() for i, g in enumerate(grads))


def _assert_same(actual, expected):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert a is not None and e is not None
        torch.testing.assert_close(a, e, **TIGHT)


@pytest.fixture(autouse=True)
def _warnings_are_errors():
    """torch warns (and drops the derivative) when it backpropagates through an op without an
    autograd kernel: every test here runs with that warning as an error."""
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*autograd kernel was not registered.*")
        yield


# --- gaussian_rsample ---------------------------------------------------------------------

@requires_extension
@pytest.mark.parametrize("order", [2, 3])
@pytest.mark.parametrize("num_samples", [None, 1, 4])
@pytest.mark.parametrize("logvar_shape", [(5, 3), (3,)])
def test_gaussian_matches_reference_on_same_noise(device, order, num_samples, logvar_shape):
    mu = torch.randn(5, 3, device=device, **F64).requires_grad_()
    logvar = (0.5 * torch.randn(logvar_shape, device=device, **F64)).requires_grad_()
    _, (seed, offset) = run_with_state(mu, logvar, num_samples, _seeded(device=device))
    eps = noise((5, 3), seed, offset, device=device, num_samples=num_samples)

    def kernels(m, lv):
        return gradext.gaussian_rsample(m, lv, num_samples, generator=_seeded(device=device))

    def on_same_noise(m, lv):
        return reference.gaussian_rsample_from_noise(m, lv, eps)

    _assert_same(
        _second_order(kernels, (mu, logvar), order),
        _second_order(on_same_noise, (mu, logvar), order),
    )


@requires_extension
def test_gaussian_differentiable_backward_keeps_no_noise(device):
    """With create_graph=True the first backward is recorded for a second one, and still
    nothing of the samples' size is saved: the backward op keeps logvar, the (seed, offset) pair
    and its own grad_logvar; the second backward redraws the noise."""
    mu = torch.randn(16, 8, device=device).requires_grad_()
    logvar = torch.randn(16, 8, device=device).requires_grad_()
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        z = gradext.gaussian_rsample(mu, logvar, 32)
        grad_mu, grad_logvar = torch.autograd.grad(z.sum(), (mu, logvar), create_graph=True)
    assert saved and max(t.numel() for t in saved) == mu.numel()
    (second,) = torch.autograd.grad(grad_logvar.sum(), logvar)
    torch.testing.assert_close(second, grad_logvar.detach() / 2)


@requires_extension
def test_gaussian_gradgradcheck(device):
    mu = torch.randn(4, 3, device=device, **F64).requires_grad_()
    logvar = (0.5 * torch.randn(3, device=device, **F64)).requires_grad_()

    def sample(m, lv):
        return gradext.gaussian_rsample(m, lv, 2, generator=_seeded(device=device))

    assert torch.autograd.gradgradcheck(sample, (mu, logvar))


@requires_extension
def test_gaussian_registered_op_matches_public_entry():
    """torch.compile and torch.func use the registered op; its double backward is the same."""
    mu = torch.randn(6, 2, **F64).requires_grad_()
    logvar = torch.randn(6, 2, **F64).requires_grad_()

    def public(m, lv):
        return gradext.gaussian_rsample(m, lv, 3, generator=_seeded())

    def registered(m, lv):
        return torch.ops.gradext.gaussian_rsample(m, lv, 3, generator=_seeded())[0]

    _assert_same(_second_order(public, (mu, logvar)), _second_order(registered, (mu, logvar)))


@requires_extension
def test_gaussian_backward_op_gradcheck(device):
    logvar = torch.randn(4, 3, device=device, **F64).requires_grad_()
    grad = torch.randn(2, 4, 3, device=device, **F64).requires_grad_()
    _, rng_state = torch.ops.gradext._gaussian_rsample_seeded(logvar, logvar, 2, 11, 4)

    def backward(g, lv):
        return torch.ops.gradext._gaussian_rsample_backward(g, lv, rng_state, [4, 3], True, True)

    assert torch.autograd.gradcheck(backward, (grad, logvar))


@requires_extension
def test_replay_draws_the_forward_noise_again(device):
    mu = torch.randn(3, 5, device=device)
    logvar = torch.randn(5, device=device)
    z, rng_state = torch.ops.gradext.gaussian_rsample(
        mu, logvar, 2, generator=_seeded(device=device))
    again, state_again = torch.ops.gradext._gaussian_rsample_replay(mu, logvar, 2, rng_state)
    assert torch.equal(z, again) and torch.equal(rng_state, state_again)
    # With mu broadcast by a zero stride, as the double backward calls it.
    zero_mu = torch.zeros((), device=device).expand(3, 5)
    scaled, _ = torch.ops.gradext._gaussian_rsample_replay(zero_mu, logvar, 2, rng_state)
    dense_zeros = torch.zeros(3, 5, device=device)
    assert torch.equal(scaled, torch.ops.gradext._gaussian_rsample_replay(
        dense_zeros, logvar, 2, rng_state)[0])
    torch.testing.assert_close(scaled, z - mu)


@requires_extension
def test_replay_checks_rng_state():
    x = torch.zeros(3)
    with pytest.raises(RuntimeError,
                       match=r"_gaussian_rsample_replay: rng_state must be the int64"):
        torch.ops.gradext._gaussian_rsample_replay(x, x, None, torch.zeros(2))
    with pytest.raises(RuntimeError, match=r"\(not contiguous\)"):
        torch.ops.gradext._gaussian_rsample_replay(
            x, x, None, torch.zeros(4, dtype=torch.long)[::2])


# --- gumbel_softmax, gumbel_sigmoid ------------------------------------------------------------

def _relaxed_on_noise(name, uniforms):
    """The reference sample of op `name` on the kernels' uniforms, and its noise transform."""
    if name == "gumbel_softmax":
        return reference.gumbel_softmax_from_noise, -torch.log(-torch.log(uniforms))
    return reference.gumbel_sigmoid_from_noise, torch.log(uniforms) - torch.log1p(-uniforms)


@requires_extension
@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("name, categories", [
    ("gumbel_softmax", 2), ("gumbel_softmax", 7), ("gumbel_softmax", 40), ("gumbel_sigmoid", 3)])
def test_relaxed_matches_reference_on_same_noise(device, hard, name, categories):
    logits = torch.randn(6, categories, device=device, **F64).requires_grad_()
    seeded = getattr(torch.ops.gradext, f"_{name}_seeded")
    on_noise, noise = _relaxed_on_noise(
        name, torch.ops.gradext._philox_uniform(logits.detach(), 5, 8))

    def kernels(lg):
        return seeded(lg, 0.7, hard, 5, 8)[0]

    def on_same_noise(lg):
        return on_noise(lg, noise, 0.7, hard)

    _assert_same(_second_order(kernels, (logits,)), _second_order(on_same_noise, (logits,)))


@requires_extension
@pytest.mark.parametrize("hard", [False, True])
def test_gumbel_softmax_public_entry_along_a_middle_dim(device, hard):
    """The public function (eager entry, dim moved last) against the registered seeded op."""
    logits = torch.randn(3, 5, 4, device=device, **F64).requires_grad_()
    def public(lg):
        return gradext.gumbel_softmax(
            lg, tau=0.6, hard=hard, dim=1, generator=_seeded(device=device))

    def registered(lg):
        rows = lg.movedim(1, -1)
        y, _ = torch.ops.gradext.gumbel_softmax(rows, 0.6, hard, generator=_seeded(device=device))
        return y.movedim(-1, 1)

    _assert_same(_second_order(public, (logits,)), _second_order(registered, (logits,)))


@requires_extension
@pytest.mark.parametrize("name", ["gumbel_softmax", "gumbel_sigmoid"])
def test_relaxed_soft_gradgradcheck(device, name):
    logits = torch.randn(4, 6, device=device, **F64).requires_grad_()
    sample = getattr(gradext, name)
    assert torch.autograd.gradgradcheck(
        lambda lg: sample(lg, tau=0.9, generator=_seeded(device=device)), (logits,))


@requires_extension
@pytest.mark.parametrize("name", ["gumbel_softmax", "gumbel_sigmoid"])
def test_relaxed_backward_op_gradcheck(device, name):
    op = getattr(torch.ops.gradext, f"_{name}_backward")
    grad = torch.randn(4, 6, device=device, **F64).requires_grad_()
    y_soft = torch.softmax(torch.randn(4, 6, device=device, **F64), -1).requires_grad_()
    assert torch.autograd.gradcheck(lambda g, y: op(g, y, 0.7), (grad, y_soft))


# --- score_function_loo, vimco ------------------------------------------------------------------
# The learning signal is a constant of the surrogate (gradext/_ops/__init__.py), as in
# the reference; the tests compare with the reference's autograd on the same inputs.

@requires_extension
@pytest.mark.parametrize("dim", [0, 1])
def test_score_function_loo_matches_reference(device, dim):
    f = torch.randn(5, 4, device=device, **F64).requires_grad_()
    log_prob = torch.randn(5, 4, device=device, **F64).requires_grad_()
    _assert_same(
        _second_order(lambda a, b: gradext.score_function_loo(a, b, dim), (f, log_prob)),
        _second_order(lambda a, b: reference.score_function_loo(a, b, dim), (f, log_prob)),
    )


@requires_extension
@pytest.mark.parametrize("dim", [0, 1])
def test_vimco_matches_reference(device, dim):
    log_weights = (3 * torch.randn(6, 4, device=device, **F64)).requires_grad_()
    log_prob = torch.randn(6, 4, device=device, **F64).requires_grad_()
    _assert_same(
        _second_order(lambda a, b: gradext.vimco(a, b, dim), (log_weights, log_prob)),
        _second_order(lambda a, b: reference.vimco(a, b, dim), (log_weights, log_prob)),
    )


@requires_extension
def test_vimco_third_order_matches_reference():
    log_weights = torch.randn(5, 3, **F64).requires_grad_()
    log_prob = torch.randn(5, 3, **F64).requires_grad_()
    _assert_same(
        _second_order(lambda a, b: gradext.vimco(a, b), (log_weights, log_prob), order=3),
        _second_order(lambda a, b: reference.vimco(a, b), (log_weights, log_prob), order=3),
    )


@requires_extension
def test_score_function_backward_ops_gradcheck(device):
    grad = torch.randn(3, device=device, **F64).requires_grad_()
    values = torch.randn(5, 3, device=device, **F64)
    assert torch.autograd.gradcheck(
        lambda g: torch.ops.gradext._score_function_loo_backward(g, values, 0), (grad,))

    log_weights = (2 * torch.randn(5, 3, device=device, **F64)).requires_grad_()
    log_prob = torch.zeros(5, 3, device=device, **F64)

    def vimco_backward(g, w):
        # The stats are a cache of w's top-two statistics: recomputed for each perturbed w.
        _, stats = torch.ops.gradext.vimco(w.detach(), log_prob, 0)
        return torch.ops.gradext._vimco_backward(g, w, stats, 0, [True, True])

    # In grad, both outputs are exact; in log_weights, the softmax weights (the signal's
    # derivative is the convention's zero, so that output is checked in grad only).
    assert torch.autograd.gradcheck(lambda g: vimco_backward(g, log_weights.detach()), (grad,))
    assert torch.autograd.gradcheck(lambda w: vimco_backward(grad.detach(), w)[0], (log_weights,))


# --- categorical_sample -------------------------------------------------------------------------

@requires_extension
def test_categorical_log_prob_gradgradcheck(device):
    logits = torch.randn(3, 5, device=device, **F64).requires_grad_()

    def log_prob(lg):
        return gradext.categorical_sample(lg, 4, generator=_seeded(device=device))[1]

    assert torch.autograd.gradgradcheck(log_prob, (logits,))


@requires_extension
def test_categorical_matches_reference_on_same_draws(device):
    logits = torch.randn(2, 3, 6, device=device, **F64).requires_grad_()
    index, _ = gradext.categorical_sample(logits.detach(), 5, generator=_seeded(device=device))

    def kernels(lg):
        return gradext.categorical_sample(lg, 5, generator=_seeded(device=device))[1]

    def on_same_draws(lg):
        log_softmax = torch.log_softmax(lg, -1).expand(5, *lg.shape)
        return log_softmax.gather(-1, index.unsqueeze(-1)).squeeze(-1)

    _assert_same(_second_order(kernels, (logits,)), _second_order(on_same_draws, (logits,)))


@requires_extension
def test_categorical_backward_op_gradcheck(device):
    logits = torch.randn(3, 5, device=device, **F64).requires_grad_()
    grad = torch.randn(4, 3, device=device, **F64).requires_grad_()
    index = torch.randint(0, 5, (4, 3), device=device)
    assert torch.autograd.gradcheck(
        lambda g, lg: torch.ops.gradext._categorical_sample_backward(g, lg, index), (grad, logits))


# --- every op: the fallback agrees, and torch.func composes ---------------------------------------

@pytest.mark.parametrize("name", ["score_function_loo", "vimco"])
def test_fallback_estimators_match_kernels(name):
    """The estimators have no noise, so the fallback and the kernels take the same inputs."""
    if not gradext.has_extension():
        pytest.skip("needs the kernels to compare with")
    from gradext import _extension

    a = torch.randn(4, 3, **F64).requires_grad_()
    b = torch.randn(4, 3, **F64).requires_grad_()
    op = getattr(gradext, name)
    kernels = _second_order(op, (a, b))
    with _extension.force_fallback():
        fallback = _second_order(op, (a, b))
    _assert_same(kernels, fallback)


# Scaled error |a - b| / (1 + |b|) allowed against float64: about 3x what was measured.
SECOND_ORDER_TOLERANCE = {torch.float32: 2e-5, torch.float16: 3e-2, torch.bfloat16: 6e-2}


@requires_extension
@pytest.mark.parametrize("dtype", list(SECOND_ORDER_TOLERANCE))
@pytest.mark.parametrize("name", OPS)
def test_every_dtype_against_float64(name, dtype):
    """Second derivatives in each dtype come back in the input's dtype, finite, and within the
    dtype's precision of float64 on the same (rounded) inputs and seed."""
    op = function_through(name)
    x = torch.randn(3, 4, **F64).to(dtype)
    (got,) = _second_order(op, (x.clone().requires_grad_(),))
    (expected,) = _second_order(op, (x.double().requires_grad_(),))
    assert got.dtype == dtype and torch.isfinite(got).all()
    scaled_error = ((got.double() - expected).abs() / (1 + expected.abs())).max().item()
    assert scaled_error < SECOND_ORDER_TOLERANCE[dtype]

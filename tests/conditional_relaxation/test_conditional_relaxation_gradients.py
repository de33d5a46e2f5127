"""conditional_relaxation's gradients: the fused backward against autograd on the reference
formula with the kernels' own noise (float64, every CPU variant, masked categories, one
relaxation's gradient absent), finite differences of seeded calls, double backward three ways
(autograd on the reference, finite differences of the first derivative, gradgradcheck of the
backward op), a learned temperature, and torch.compile with an annealed tau."""

from __future__ import annotations

import math

import pytest
import torch

import gradext
from gradext import reference
from helpers.common import requires_extension, tau_tensor
from helpers.higher_order import warnings_are_errors  # noqa: F401  (autouse fixture)
from helpers.paths import CPU_VARIANTS, on_path, skip_unless_cpu_variant

ops = torch.ops.gradext
F64 = dict(dtype=torch.float64)
TIGHT = dict(rtol=1e-11, atol=1e-12)
CASES = [(False, (17, 9)), (True, (17, 9)), (True, (3, 700)), (True, (40, 2))]
CASE_IDS = ["bernoulli", "categorical", "categorical-long-rows", "categorical-2"]


def _logits(shape, seed=0, masked=False):
    g = torch.Generator().manual_seed(seed)
    x = 2.0 * torch.randn(shape, generator=g, **F64)
    if masked:
        x[:, 1] = -math.inf
    return x


def _reference_relaxations(logits, state, categorical, tau):
    noise, cond_noise = ops._conditional_relaxation_noise(logits.detach(), state, categorical)
    _, soft, soft_cond = reference.relaxations_from_noise(
        logits, noise, cond_noise, tau, categorical
    )
    return soft, soft_cond


@requires_extension
@pytest.mark.parametrize("variant", CPU_VARIANTS)
@pytest.mark.parametrize("categorical,shape", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("which", ["both", "soft", "soft_cond"])
def test_fused_backward_matches_autograd_on_the_reference(variant, categorical, shape, which):
    skip_unless_cpu_variant(variant)
    logits = _logits(shape, masked=categorical and shape[1] > 2).requires_grad_()
    g = torch.Generator().manual_seed(1)
    grad_soft = torch.randn(shape, generator=g, **F64)
    grad_cond = torch.randn(shape, generator=g, **F64)
    with on_path(f"cpu-{variant}"):
        _, soft, soft_cond, state = ops._conditional_relaxation_seeded(
            logits, tau_tensor(0.6), categorical, 5, 4
        )
        outputs = {"both": (soft, soft_cond), "soft": (soft,), "soft_cond": (soft_cond,)}[which]
        grads = {"both": (grad_soft, grad_cond), "soft": (grad_soft,), "soft_cond": (grad_cond,)}
        (got,) = torch.autograd.grad(outputs, logits, grads[which])
    ref_soft, ref_cond = _reference_relaxations(logits, state, categorical, 0.6)
    ref_outputs = {"both": (ref_soft, ref_cond), "soft": (ref_soft,), "soft_cond": (ref_cond,)}
    (expected,) = torch.autograd.grad(ref_outputs[which], logits, grads[which])
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, expected, **TIGHT)


@requires_extension
@pytest.mark.parametrize("variant", CPU_VARIANTS)
@pytest.mark.parametrize("categorical,shape", CASES, ids=CASE_IDS)
def test_jvp_op_matches_forward_mode_on_the_reference(variant, categorical, shape):
    """The JVP op (the fused backward's derivative in its incoming gradients) against
    torch.func.jvp of the reference formula on the same noise, float64."""
    skip_unless_cpu_variant(variant)
    logits = _logits(shape, seed=2, masked=categorical and shape[1] > 2)
    tangent = torch.randn(shape, generator=torch.Generator().manual_seed(3), **F64)
    with on_path(f"cpu-{variant}"):
        state = ops._conditional_relaxation_seeded(logits, tau_tensor(0.6), categorical, 5, 4)[3]
        got = ops._conditional_relaxation_jvp(tangent, logits, tau_tensor(0.6), state, categorical)
    _, expected = torch.func.jvp(
        lambda x: _reference_relaxations(x, state, categorical, 0.6), (logits,), (tangent,)
    )
    for a, e in zip(got, expected):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, e, **TIGHT)


@requires_extension
@pytest.mark.parametrize("categorical", [False, True], ids=["bernoulli", "categorical"])
def test_gradient_by_finite_differences_of_seeded_calls(categorical):
    """A seeded call is a smooth function of the logits where b does not flip: central
    differences (h = 1e-6, float64) of a fixed weighted sum of soft and soft_cond."""
    logits = _logits((6, 5), seed=3)
    weights = torch.randn(2, 6, 5, generator=torch.Generator().manual_seed(2), **F64)

    def loss(x):
        _, soft, soft_cond, _ = ops._conditional_relaxation_seeded(
            x, tau_tensor(0.8), categorical, 9, 0
        )
        return (weights[0] * soft).sum() + (weights[1] * soft_cond**2).sum()

    leaf = logits.clone().requires_grad_()
    (grad,) = torch.autograd.grad(loss(leaf), leaf)
    b = ops._conditional_relaxation_seeded(logits, tau_tensor(0.8), categorical, 9, 0)[0]
    h = 1e-6
    numeric = torch.zeros_like(logits)
    for i in range(logits.numel()):
        step = torch.zeros(logits.numel(), **F64)
        step[i] = h
        step = step.view_as(logits)
        b_plus = ops._conditional_relaxation_seeded(
            logits + step, tau_tensor(0.8), categorical, 9, 0
        )[0]
        assert torch.equal(b_plus, b), "the step flipped a sample: choose another seed"
        numeric.view(-1)[i] = (loss(logits + step) - loss(logits - step)) / (2 * h)
    torch.testing.assert_close(grad, numeric, rtol=1e-6, atol=1e-8)


def _second_derivative(fn, logits):
    leaf = logits.clone().requires_grad_()
    soft, soft_cond = fn(leaf)
    loss = (torch.sin(3 * soft) + soft_cond**3).sum()
    (g,) = torch.autograd.grad(loss, leaf, create_graph=True)
    (gg,) = torch.autograd.grad((g**2).sum() + g.sin().sum(), leaf)
    return g.detach(), gg


@requires_extension
@pytest.mark.parametrize("categorical,shape", CASES[:2], ids=CASE_IDS[:2])
def test_double_backward_matches_autograd_on_the_reference(categorical, shape):
    logits = _logits(shape, seed=4, masked=categorical)
    state = ops._conditional_relaxation_seeded(logits, tau_tensor(0.5), categorical, 3, 2)[3]

    def kernels(x):
        return ops._conditional_relaxation_seeded(x, tau_tensor(0.5), categorical, 3, 2)[1:3]

    def on_reference(x):
        return _reference_relaxations(x, state, categorical, 0.5)

    got = _second_derivative(kernels, logits)
    expected = _second_derivative(on_reference, logits)
    for a, e in zip(got, expected):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, e, **TIGHT)


@requires_extension
@pytest.mark.parametrize("categorical", [False, True], ids=["bernoulli", "categorical"])
def test_backward_op_gradgradcheck(categorical):
    logits = _logits((3, 4), seed=6).requires_grad_()
    state = ops._conditional_relaxation_seeded(logits.detach(), tau_tensor(0.7), categorical, 1, 0)[
        3
    ]
    grad_soft = torch.randn(3, 4, **F64).requires_grad_()
    grad_cond = torch.randn(3, 4, **F64).requires_grad_()

    def backward(gs, gc, x):
        return ops._conditional_relaxation_backward(gs, gc, x, tau_tensor(0.7), state, categorical)

    assert torch.autograd.gradcheck(backward, (grad_soft, grad_cond, logits))
    assert torch.autograd.gradgradcheck(backward, (grad_soft, grad_cond, logits))

    def jvp(v, x):
        return ops._conditional_relaxation_jvp(v, x, tau_tensor(0.7), state, categorical)

    tangent = torch.randn(3, 4, **F64).requires_grad_()
    assert torch.autograd.gradcheck(jvp, (tangent, logits))


def test_learned_temperature_gets_its_gradient(implementation):
    """A tau that requires grad runs the pure-PyTorch path; its gradient against finite
    differences of the same noise (a seeded generator)."""
    logits = _logits((5, 4), seed=7)
    tau = torch.tensor(0.7, **F64, requires_grad=True)

    def loss(t):
        _, soft, soft_cond = gradext.conditional_relaxation(
            logits, t, categorical=True, generator=torch.Generator().manual_seed(3)
        )
        return (soft * torch.arange(4.0, **F64)).sum() + (soft_cond**2).sum()

    (grad,) = torch.autograd.grad(loss(tau), tau)
    h = 1e-6
    with torch.no_grad():  # the same (pure-PyTorch) path: tau tensors that require grad
        plus, minus = (torch.tensor(0.7 + s * h, **F64, requires_grad=True) for s in (1, -1))
        numeric = (loss(plus) - loss(minus)) / (2 * h)
    torch.testing.assert_close(grad, numeric, rtol=1e-6, atol=1e-9)


@requires_extension
def test_compile_with_an_annealed_tau_and_both_cases():
    """torch.compile(fullgraph=True) of a training step with a tau schedule: values and
    gradients equal eager's, and the changing tau costs no recompilation beyond the first
    dynamic one (at most 2 compilations per case)."""
    torch._dynamo.reset()
    counts = {"frames": 0}

    def count(gm, example_inputs):
        counts["frames"] += 1
        return gm.forward

    def step(x, tau, categorical):
        _, soft, soft_cond = gradext.conditional_relaxation(x, tau, categorical=categorical)
        return (soft * 2 + soft_cond).sum()

    compiled = torch.compile(step, fullgraph=True, backend=count)
    for categorical in (False, True):
        counts["frames"] = 0
        for tau in (1.0, 0.8, 0.6, 0.5, 0.4):
            x = torch.randn(8, 5, requires_grad=True)
            torch.manual_seed(3)
            loss = compiled(x, tau, categorical)
            (grad,) = torch.autograd.grad(loss, x)
            x2 = x.detach().clone().requires_grad_()
            torch.manual_seed(3)
            loss2 = step(x2, tau, categorical)
            (grad2,) = torch.autograd.grad(loss2, x2)
            torch.testing.assert_close(loss, loss2)
            torch.testing.assert_close(grad, grad2)
        assert counts["frames"] <= 2, counts

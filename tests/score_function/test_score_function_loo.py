"""score_function_loo (RLOO): value, gradients against the K x K oracle, unbiasedness and
variance on a problem with a known gradient, layouts, dtypes, errors, fallback."""

from __future__ import annotations

import pytest
import torch

import gradext
from helpers.common import ALL_DTYPES, tolerance
from helpers.oracles import rloo_log_prob_grad

SHAPES_AND_DIMS = [
    ((2, 7), 0),  # the smallest K
    ((16, 300), 0),  # samples leading, many datapoints
    ((300, 16), -1),  # samples last
    ((5, 9, 130), 1),  # samples in the middle, a partial block of lanes
    ((3, 4, 5, 6), -2),
    ((8,), 0),  # one datapoint: a scalar result
]


def _inputs(shape, dtype, device, requires_grad=True):
    f = torch.randn(shape, device=device).to(dtype).requires_grad_(requires_grad)
    log_prob = torch.randn(shape, device=device).to(dtype).requires_grad_(requires_grad)
    return f, log_prob


@pytest.mark.parametrize("shape, dim", SHAPES_AND_DIMS)
def test_value_and_gradients_match_oracle(implementation, device, shape, dim):
    f, log_prob = _inputs(shape, torch.float64, device)
    out = gradext.score_function_loo(f, log_prob, dim)
    torch.testing.assert_close(out, f.detach().mean(dim), **tolerance(torch.float64))
    grad = torch.randn_like(out)
    grad_f, grad_log_prob = torch.autograd.grad(out, (f, log_prob), grad)
    torch.testing.assert_close(
        grad_log_prob, rloo_log_prob_grad(f, grad, dim), **tolerance(torch.float64)
    )
    # f enters the score term as a constant: its gradient is that of the mean alone.
    K = shape[dim]
    torch.testing.assert_close(grad_f, (grad / K).unsqueeze(dim).expand(shape))


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("dim", [0, -1])  # samples at unit stride across datapoints, or not
def test_every_dtype(implementation, device, dtype, dim):
    shape = (12, 257) if dim == 0 else (257, 12)
    f, log_prob = _inputs(shape, dtype, device)
    out = gradext.score_function_loo(f, log_prob, dim)
    assert out.dtype == dtype and out.shape == (257,)
    grad = torch.randn(257, device=device).to(dtype)
    grad_f, grad_log_prob = torch.autograd.grad(out, (f, log_prob), grad)
    assert grad_log_prob.dtype == dtype and grad_f.dtype == dtype
    torch.testing.assert_close(out.double(), f.detach().double().mean(dim), **tolerance(dtype))
    torch.testing.assert_close(
        grad_log_prob.double(), rloo_log_prob_grad(f, grad, dim), **tolerance(dtype)
    )


def test_mixed_dtypes_give_each_input_its_own(implementation, device):
    f = torch.randn(4, 10, device=device, requires_grad=True)
    log_prob = torch.randn(4, 10, device=device, dtype=torch.float64, requires_grad=True)
    out = gradext.score_function_loo(f, log_prob)
    assert out.dtype == torch.float32
    grad_f, grad_log_prob = torch.autograd.grad(out.sum(), (f, log_prob))
    assert grad_f.dtype == torch.float32 and grad_log_prob.dtype == torch.float64
    torch.testing.assert_close(
        grad_log_prob, rloo_log_prob_grad(f, torch.ones(10), 0), rtol=1e-6, atol=1e-6
    )


def test_non_contiguous_inputs(implementation, device):
    base_f = torch.randn(40, 6, dtype=torch.float64, device=device)
    f = base_f.t().requires_grad_()  # [6, 40], samples along dim 0, not contiguous
    log_prob = torch.randn(40, 6, dtype=torch.float64, device=device).t().requires_grad_()
    out = gradext.score_function_loo(f, log_prob, 0)
    grad = torch.randn_like(out)
    (grad_log_prob,) = torch.autograd.grad(out, log_prob, grad)
    torch.testing.assert_close(grad_log_prob, rloo_log_prob_grad(f, grad, 0))


def test_only_log_prob_requires_grad(implementation, device):
    f = torch.randn(5, 3, device=device, dtype=torch.float64)
    log_prob = torch.randn(5, 3, device=device, dtype=torch.float64, requires_grad=True)
    out = gradext.score_function_loo(f, log_prob, 0)
    (grad_log_prob,) = torch.autograd.grad(out.sum(), log_prob)
    torch.testing.assert_close(grad_log_prob, rloo_log_prob_grad(f, torch.ones(3), 0))


def test_gradcheck_of_the_pathwise_part(implementation, device):
    """Finite differences see only the value, mean(f): they check f's gradient. log_prob's is an
    estimator, not the derivative of the value (the value does not depend on log_prob), and is
    checked against the oracle above."""
    f, log_prob = _inputs((4, 3, 5), torch.float64, device)
    assert torch.autograd.gradcheck(lambda a: gradext.score_function_loo(a, log_prob, 1), (f,))


def test_empty_inputs(implementation, device):
    f, log_prob = _inputs((3, 0, 2), torch.float32, device)
    out = gradext.score_function_loo(f, log_prob, 0)
    assert out.shape == (0, 2)
    grad_f, grad_log_prob = torch.autograd.grad(out.sum(), (f, log_prob))
    assert grad_f.shape == grad_log_prob.shape == (3, 0, 2)


# --- The estimator's statistics on a problem with a known gradient ---------------------------
# q = Categorical(softmax(theta)) over 5 values, fixed f(z) = c[z] with a large common offset
# (the case baselines exist for). d/d theta E_q[f] = p * (c - p.c). N independent replicates,
# each with K samples, give N gradient estimates.

THETA = [0.3, -0.2, 0.8, 0.0, -1.0]
COST = [10.0, 12.0, 9.0, 11.5, 14.0]


def _exact_gradient():
    p = torch.softmax(torch.tensor(THETA, dtype=torch.float64), 0)
    c = torch.tensor(COST, dtype=torch.float64)
    return p * (c - (p * c).sum())


def _replicated_gradients(estimator, K=4, N=20000, seed=0):
    """N gradient estimates of d E[f] / d theta, one per replicate, as rows [N, 5]."""
    theta = torch.tensor(THETA, dtype=torch.float64).expand(N, 5).clone().requires_grad_()
    generator = torch.Generator().manual_seed(seed)
    index, log_prob = gradext.categorical_sample(theta, K, generator=generator)  # [K, N]
    f = torch.tensor(COST, dtype=torch.float64)[index]
    (grad,) = torch.autograd.grad(estimator(f, log_prob).sum(), theta)
    return grad


def _reinforce_without_baseline(f, log_prob):
    return (f.detach() * log_prob).mean(0)


def test_rloo_is_unbiased(implementation):
    """z-test per component of the mean of 20000 estimates against the exact gradient:
    |z| < 4.5 (a false alarm has probability below 1e-4 over the 5 components)."""
    grads = _replicated_gradients(lambda f, lp: gradext.score_function_loo(f, lp, 0))
    mean = grads.mean(0)
    standard_error = grads.std(0) / grads.shape[0] ** 0.5
    z = (mean - _exact_gradient()) / standard_error
    assert z.abs().max() < 4.5, f"z-scores {z.tolist()}"


def test_rloo_variance_is_below_reinforce(implementation):
    """Same draws for both estimators; with f offset by about 11 the plain REINFORCE variance is
    over 10x larger here, so a ratio below 0.2 leaves a wide margin for sampling error (the
    sample variances of 20000 estimates are within a few percent of the true ones)."""
    rloo = _replicated_gradients(lambda f, lp: gradext.score_function_loo(f, lp, 0), seed=1)
    plain = _replicated_gradients(_reinforce_without_baseline, seed=1)
    ratio = rloo.var(0).sum() / plain.var(0).sum()
    assert ratio < 0.2, f"variance ratio RLOO / REINFORCE = {ratio:.3f}"
    # Both are unbiased: the plain estimator's mean is also within 4.5 standard errors.
    z = (plain.mean(0) - _exact_gradient()) / (plain.std(0) / plain.shape[0] ** 0.5)
    assert z.abs().max() < 4.5


# --- Errors ---------------------------------------------------------------------------------


def test_errors(implementation):
    f = torch.randn(4, 3)
    with pytest.raises(
        ValueError, match=r"score_function_loo: needs K >= 1 samples along dim 0 of f, got K = 0"
    ):
        gradext.score_function_loo(f[:0], f[:0], 0)
    with pytest.raises(
        ValueError,
        match=r"f of shape \(4, 3\) and log_prob of shape \(4, 2\) must have the same shape",
    ):
        gradext.score_function_loo(f, f[:, :2], 0)
    with pytest.raises(
        TypeError, match=r"f must be a floating-point tensor, got dtype torch.int64"
    ):
        gradext.score_function_loo(f.long(), f, 0)
    with pytest.raises(TypeError, match=r"log_prob must be a floating-point tensor"):
        gradext.score_function_loo(f, f.long(), 0)
    with pytest.raises(IndexError, match=r"dim 2 is out of range for f with 2 dimensions"):
        gradext.score_function_loo(f, f, 2)
    with pytest.raises(TypeError, match=r"dim must be an int, got float"):
        gradext.score_function_loo(f, f, 0.0)
    with pytest.raises(ValueError, match=r"f is on cpu but log_prob is on meta"):
        gradext.score_function_loo(f, f.to("meta"), 0)
    with pytest.raises(TypeError, match=r"log_prob must be a torch.Tensor, got list"):
        gradext.score_function_loo(f, [1.0], 0)
    with pytest.raises(ValueError, match=r"f must have at least one dimension"):
        gradext.score_function_loo(torch.tensor(1.0), torch.tensor(1.0), 0)

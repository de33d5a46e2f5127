"""Gradients of dirichlet_rsample and beta_rsample. Against an independent formula on the
kernel's own sample (autograd through a float64 softmax of the saved log-Gammas, with d log g /
d alpha from the fallback's maths); d log g / d alpha against 40-digit mpmath (relative error at
most 1e-10 in float64, 1e-4 in float32), tiny concentrations included; unbiasedness, by z-tests
(|z| < 4.5 over 200,000 samples at fixed seeds): the mean gradient of E[x] matches d E[x_j] /
d alpha_i = (delta_ij alpha_0 - alpha_j) / alpha_0^2, and Beta's mean c1 / (c1 + c0) in both
parameters, on the kernels and the fallback. Second derivatives raise NotImplementedError."""

from __future__ import annotations

import math

import pytest
import torch

import gradext
from gradext import reference
from helpers.common import requires_extension

F64 = dict(dtype=torch.float64)


@requires_extension
def test_gradient_is_the_formula_on_the_saved_sample():
    concentration = torch.tensor([[1e-3, 0.2, 1.0, 3.7], [40.0, 2e3, 0.5, 0.5]], **F64)
    c = concentration.clone().requires_grad_()
    x, log_gamma = torch.ops.gradext._dirichlet_rsample_seeded(c, 3, 4, 0)
    upstream = torch.randn(x.shape, generator=torch.Generator().manual_seed(1), **F64)
    (grad,) = torch.autograd.grad(x, c, upstream)
    # Independent route: x = softmax(log g) by autograd, d log g / d alpha from the fallback.
    d_log = reference.gamma.standard_gamma_dlog_dalpha(
        concentration.expand_as(log_gamma), log_gamma
    )
    leaf = log_gamma.clone().requires_grad_()
    (grad_log,) = torch.autograd.grad(torch.softmax(leaf, -1), leaf, upstream)
    expected = (grad_log * d_log).sum(0)
    torch.testing.assert_close(grad, expected, rtol=1e-11, atol=1e-14)


@requires_extension
@pytest.mark.parametrize("dtype, tolerance", [(torch.float64, 1e-10), (torch.float32, 1e-4)])
def test_dlog_dalpha_accuracy_against_mpmath(dtype, tolerance):
    """d log g / d alpha at the op's own log-Gammas (underflowing ones included), recovered from
    the backward: x_i (grad_i - sum_j grad_j x_j) D_i with grad = e_i."""
    pytest.importorskip("scipy")
    import mpmath

    from helpers.gamma import mpmath_dz_dalpha

    alphas = [1e-3, 0.05, 1.0, 7.0, 300.0]
    concentration = torch.tensor(alphas, dtype=dtype)
    x, log_gamma = torch.ops.gradext._dirichlet_rsample_seeded(concentration, 4, 11, 0)
    worst = 0.0
    for k in range(4):
        for i, a in enumerate(alphas):
            grad = torch.zeros_like(x)
            grad[k, i] = 1.0
            out = torch.ops.gradext._dirichlet_rsample_backward(grad, x, log_gamma, concentration)
            got = out[k, i].item() / (x[k, i].item() * (1 - x[k, i].item()))
            lg = log_gamma[k, i].item()
            if lg < -690:  # underflows every float type: the series' first term, in mpmath
                with mpmath.workdps(40):
                    expected = float((mpmath.digamma(a + 1) - lg) / a)
            else:
                g = math.exp(lg)
                expected = mpmath_dz_dalpha(a, g) / g
            if x[k, i].item() * (1 - x[k, i].item()) > 0 and x[k, i].item() > 1e-30:
                worst = max(worst, abs(got - expected) / abs(expected))
    assert worst <= tolerance, worst


def _z(values, expected):
    return (values.mean().item() - expected) / (values.std().item() / math.sqrt(values.numel()))


@pytest.mark.parametrize("alpha", [[0.4, 1.0, 2.5], [3.0, 0.2]])
def test_dirichlet_gradients_are_unbiased(implementation, alpha):
    n, k = 200_000, len(alpha)
    c = torch.tensor(alpha, **F64).expand(n, k).clone().requires_grad_()
    x = gradext.dirichlet_rsample(c, generator=torch.Generator().manual_seed(6))
    total = sum(alpha)
    for j in range(k):  # d E[x_j] / d alpha_i, per row
        (grad,) = torch.autograd.grad(x[:, j].sum(), c, retain_graph=True)
        for i in range(k):
            expected = ((total if i == j else 0.0) - alpha[j]) / total**2
            assert abs(_z(grad[:, i], expected)) < 4.5, (i, j)


def test_beta_gradients_are_unbiased(implementation):
    n, c1_value, c0_value = 200_000, 0.7, 2.0
    c1 = torch.full((n,), c1_value, **F64).requires_grad_()
    c0 = torch.full((n,), c0_value, **F64).requires_grad_()
    x = gradext.beta_rsample(c1, c0, generator=torch.Generator().manual_seed(8))
    g1, g0 = torch.autograd.grad(x.sum(), (c1, c0))
    total = c1_value + c0_value
    assert abs(_z(g1, c0_value / total**2)) < 4.5
    assert abs(_z(g0, -c1_value / total**2)) < 4.5


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_gradients_come_back_in_the_concentrations_dtype(implementation, dtype):
    c = (torch.rand(6, 4) + 0.3).to(dtype).requires_grad_()
    x = gradext.dirichlet_rsample(c, 3)
    (grad,) = torch.autograd.grad((x * x).sum(), c)
    assert grad.dtype == dtype and grad.shape == c.shape and torch.isfinite(grad).all()


def test_broadcast_concentration_sums_the_gradient(implementation):
    """A concentration shared by a batch (shape [C]) gets the batch's summed gradient."""
    shared = (torch.rand(5, **F64) + 0.5).requires_grad_()
    x = gradext.dirichlet_rsample(shared, 7, generator=torch.Generator().manual_seed(2))
    (grad,) = torch.autograd.grad((x**2).sum(), shared)
    per_sample = shared.detach().expand(7, 5).clone().requires_grad_()
    y = gradext.dirichlet_rsample(per_sample, generator=torch.Generator().manual_seed(2))
    assert y.shape == (7, 5)
    (grad_each,) = torch.autograd.grad((y**2).sum(), per_sample)
    assert grad.shape == (5,)
    if implementation == "kernels":  # the same elements, so the same draws
        torch.testing.assert_close(grad, grad_each.sum(0), rtol=1e-12, atol=1e-14)


def test_second_derivatives_raise(implementation):
    c = (torch.rand(3, 4, **F64) + 0.5).requires_grad_()
    x = gradext.dirichlet_rsample(c, generator=torch.Generator().manual_seed(0))
    (g,) = torch.autograd.grad((x**2).sum(), c, create_graph=True)
    with pytest.raises(NotImplementedError, match=r"dirichlet_rsample: second derivatives"):
        torch.autograd.grad(g.sum(), c)

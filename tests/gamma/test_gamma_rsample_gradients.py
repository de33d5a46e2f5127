"""gamma_rsample's gradients. Accuracy: dz/dconcentration of the op's own samples against
40-digit mpmath (relative error at most 1e-10 in float64 and 1e-4 in float32, concentrations
1e-3 to 1e4), and the rate's -z / rate exactly. Unbiasedness, by z-tests (|z| < 4.5 over 200,000
samples, at fixed seeds): the mean gradient of E[z] and of E[z^2] matches the analytic
derivative in the concentration and the rate, on the kernels and the fallback."""

from __future__ import annotations

import math

import pytest
import torch

import gradext
from gradext import reference
from helpers.common import requires_extension

F64 = dict(dtype=torch.float64)


def _sample_and_grads(concentration, rate, num_samples=None, upstream_seed=3, seed=5):
    c = concentration.clone().requires_grad_()
    r = rate.clone().requires_grad_()
    z = gradext.gamma_rsample(c, r, num_samples, generator=torch.Generator().manual_seed(seed))
    upstream = torch.randn(z.shape, generator=torch.Generator().manual_seed(upstream_seed), **F64)
    upstream = upstream.to(z.dtype)
    grad_c, grad_r = torch.autograd.grad(z, (c, r), upstream)
    return z.detach(), upstream, grad_c, grad_r


@requires_extension
def test_gradients_are_the_formula_on_the_saved_sample():
    """Against the fallback's maths (gradext/reference/gamma.py, an independent vectorized
    implementation) on the kernel's own samples, with broadcasting and K samples summed."""
    concentration = torch.tensor([[1e-3, 0.2, 1.0, 3.7, 40.0, 2e3]], **F64).expand(4, 6)
    rate = torch.tensor([[0.5], [1.0], [2.0], [7.0]], **F64)
    z, upstream, grad_c, grad_r = _sample_and_grads(concentration.contiguous(), rate, 3)
    standard = z * rate
    dz_dc = reference.standard_gamma_dz_dalpha(concentration, standard) / rate
    torch.testing.assert_close(grad_c, (upstream * dz_dc).sum(0), rtol=1e-12, atol=1e-11)
    torch.testing.assert_close(grad_r, (-upstream * z / rate).sum((0, 2), keepdim=True)[0])


@requires_extension
@pytest.mark.parametrize(
    "dtype, tolerance", [(torch.float64, 1e-10), (torch.float32, 1e-4)], ids=["float64", "float32"]
)
def test_implicit_gradient_accuracy_against_mpmath(dtype, tolerance):
    pytest.importorskip("scipy")
    from helpers.gamma import mpmath_dz_dalpha

    alphas = torch.tensor([1e-3, 1e-2, 0.1, 0.7, 1.0, 3.0, 30.0, 500.0, 1e4], dtype=dtype)
    concentration = alphas.repeat_interleave(6)
    c = concentration.clone().requires_grad_()
    z = gradext.gamma_rsample(c, generator=torch.Generator().manual_seed(8))
    (grad,) = torch.autograd.grad(z.sum(), c)
    worst = 0.0
    for a, zi, g in zip(concentration.tolist(), z.tolist(), grad.tolist()):
        expected = mpmath_dz_dalpha(a, zi)  # at the stored sample, as the kernel reads it
        worst = max(worst, abs(g - expected) / abs(expected))
    assert worst <= tolerance, worst


def _z_score(values: torch.Tensor, expected: float) -> float:
    return (values.mean().item() - expected) / (values.std().item() / math.sqrt(values.numel()))


@pytest.mark.parametrize("alpha, beta", [(0.2, 1.0), (1.0, 2.0), (7.5, 0.5)])
def test_gradients_are_unbiased(implementation, alpha, beta):
    """Per-element gradients of z and z^2 (each element its own parameter) average to
    d E / d theta: E z = a / b, E z^2 = a (a + 1) / b^2."""
    n = 200_000
    c = torch.full((n,), alpha, **F64).requires_grad_()
    r = torch.full((n,), beta, **F64).requires_grad_()
    z = gradext.gamma_rsample(c, r, generator=torch.Generator().manual_seed(21))
    grad_c, grad_r = torch.autograd.grad(z.sum(), (c, r), retain_graph=True)
    assert abs(_z_score(grad_c, 1 / beta)) < 4.5
    assert abs(_z_score(grad_r, -alpha / beta**2)) < 4.5
    grad_c2, grad_r2 = torch.autograd.grad((z * z).sum(), (c, r))
    assert abs(_z_score(grad_c2, (2 * alpha + 1) / beta**2)) < 4.5
    assert abs(_z_score(grad_r2, -2 * alpha * (alpha + 1) / beta**3)) < 4.5


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_gradients_come_back_in_each_parameters_dtype(implementation, dtype):
    c = (torch.rand(5, 3) + 0.5).to(dtype).requires_grad_()
    r = torch.rand(3, dtype=torch.float64).add(0.5).requires_grad_()
    z = gradext.gamma_rsample(c, r, 2)
    grad_c, grad_r = torch.autograd.grad(z.sum(), (c, r))
    assert grad_c.dtype == dtype and grad_r.dtype == torch.float64
    assert grad_c.shape == c.shape and grad_r.shape == r.shape
    assert torch.isfinite(grad_c).all() and torch.isfinite(grad_r).all()


def test_only_the_rate_or_only_the_concentration(implementation):
    """A parameter that does not require grad gets none, and the other's gradient is unchanged
    (a number rate is a constant)."""
    c = torch.rand(6, **F64) + 0.5
    r = torch.rand(6, **F64) + 0.5
    r_leaf = r.clone().requires_grad_()
    z = gradext.gamma_rsample(c, r_leaf, generator=torch.Generator().manual_seed(2))
    (grad_r,) = torch.autograd.grad(z.sum(), r_leaf)
    torch.testing.assert_close(grad_r, -z.detach() / r, rtol=1e-15, atol=0)
    c_leaf = c.clone().requires_grad_()
    z = gradext.gamma_rsample(c_leaf, 3.0, generator=torch.Generator().manual_seed(2))
    (grad_c,) = torch.autograd.grad(z.sum(), c_leaf)
    expected = reference.standard_gamma_dz_dalpha(c, 3.0 * z.detach()) / 3.0
    torch.testing.assert_close(grad_c, expected, rtol=1e-12, atol=0)

"""Second derivatives through gamma_rsample. With respect to the rate and through the incoming
gradient they exist and match float64 autograd on the reference z = standard / rate with the
same standard sample (its implicit gradient held fixed where the reference formula says so), and
gradcheck of the fused backward op (finite differences) in grad, z and rate checks the closed
form of d(dz/dalpha)/dz. With respect to the concentration they raise NotImplementedError,
on the kernels and the fallback."""

from __future__ import annotations

import pytest
import torch

import gradext
from gradext import reference
from helpers.common import requires_extension
from helpers.higher_order import (
    F64,
    warnings_are_errors,  # noqa: F401  (autouse fixture)
)


def _loss(z):
    return (torch.sin(z) * z + 0.3 * z**3).sum()


@requires_extension
def test_second_derivative_in_the_rate_matches_autograd_on_the_reference():
    concentration = torch.tensor([0.3, 1.0, 4.0, 25.0], **F64)
    rate = torch.tensor([0.7, 1.3, 2.0, 0.9], **F64).requires_grad_()
    z = gradext.gamma_rsample(concentration, rate, 2, generator=torch.Generator().manual_seed(1))
    (g,) = torch.autograd.grad(_loss(z), rate, create_graph=True)
    (h,) = torch.autograd.grad((g**2).sum(), rate)
    # Reference: z = standard / rate with the same standard sample, in plain autograd.
    standard = (z * rate).detach()
    rate_ref = rate.detach().clone().requires_grad_()
    (g_ref,) = torch.autograd.grad(_loss(standard / rate_ref), rate_ref, create_graph=True)
    (h_ref,) = torch.autograd.grad((g_ref**2).sum(), rate_ref)
    torch.testing.assert_close(g, g_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(h, h_ref, rtol=1e-10, atol=1e-10)


@requires_extension
def test_gradcheck_of_the_fused_backward_in_grad_z_and_rate():
    """Finite differences of _gamma_rsample_backward's outputs in grad, z and rate (at fixed
    concentration): checks d(dz/dalpha)/dz = psi(a) - log g - h ((a - 1) / g - 1) and the
    rate terms."""
    concentration = torch.tensor([[0.4, 1.0, 3.0, 12.0]], **F64)
    rate = torch.tensor([0.8, 1.5, 1.0, 2.0], **F64)
    z = torch.ops.gradext._gamma_rsample_seeded(concentration, rate, 3, 5, 0)

    def backward_op(grad, z, rate):
        return torch.ops.gradext._gamma_rsample_backward(grad, z, concentration, rate, [True, True])

    inputs = (
        torch.randn(z.shape, **F64).requires_grad_(),
        z.requires_grad_(),
        rate.requires_grad_(),
    )
    assert torch.autograd.gradcheck(backward_op, inputs)
    assert torch.autograd.gradgradcheck(backward_op, inputs)


def test_second_derivative_in_the_concentration_raises(implementation):
    concentration = (torch.rand(5, **F64) + 0.5).requires_grad_()
    z = gradext.gamma_rsample(concentration, 1.0, generator=torch.Generator().manual_seed(0))
    (g,) = torch.autograd.grad(_loss(z), concentration, create_graph=True)
    with pytest.raises(NotImplementedError, match=r"gamma_rsample: .*concentration"):
        torch.autograd.grad(g.sum(), concentration)


def test_first_derivative_with_create_graph_is_the_plain_one(implementation):
    """create_graph=True records the backward's own graph without changing its values."""
    concentration = (torch.rand(5, **F64) + 0.5).requires_grad_()
    z = gradext.gamma_rsample(concentration, 1.0, generator=torch.Generator().manual_seed(0))
    (recorded,) = torch.autograd.grad(_loss(z), concentration, create_graph=True)
    z = gradext.gamma_rsample(concentration, 1.0, generator=torch.Generator().manual_seed(0))
    (plain,) = torch.autograd.grad(_loss(z), concentration)
    torch.testing.assert_close(recorded, plain, rtol=0, atol=0)
    standard = z.detach()
    expected = (torch.cos(standard) * standard + torch.sin(standard) + 0.9 * standard**2) * (
        reference.standard_gamma_dz_dalpha(concentration.detach(), standard)
    )
    torch.testing.assert_close(plain, expected, rtol=1e-12, atol=1e-12)

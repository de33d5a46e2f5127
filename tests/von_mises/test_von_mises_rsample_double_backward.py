"""Second derivatives through von_mises_rsample. With respect to loc and through the incoming
gradient they exist: gradcheck and gradgradcheck of the fused backward op (finite differences)
in grad, x and loc check the closed form dh/ddelta = -(cos delta - A) + kappa sin delta h of the
implicit gradient h; and a second derivative in loc through a loss matches finite differences
of the first. With respect to the concentration they raise NotImplementedError, on the kernels
and the fallback."""

from __future__ import annotations

import pytest
import torch

import gradext
from helpers.common import requires_extension
from helpers.higher_order import (
    F64,
    warnings_are_errors,  # noqa: F401  (autouse fixture)
)


@requires_extension
def test_gradcheck_of_the_fused_backward_in_grad_x_and_loc():
    concentration = torch.tensor([0.4, 1.0, 3.0, 12.0, 80.0], **F64)
    loc = torch.tensor([[0.3, -2.0, 1.0, 3.0, 0.0]], **F64)
    x = torch.ops.gradext._von_mises_rsample_seeded(loc, concentration, 3, 5, 0)

    def backward_op(grad, x, loc):
        return torch.ops.gradext._von_mises_rsample_backward(grad, x, loc, concentration)

    inputs = (
        torch.randn(x.shape, **F64).requires_grad_(),
        x.requires_grad_(),
        loc.requires_grad_(),
    )
    assert torch.autograd.gradcheck(backward_op, inputs)
    assert torch.autograd.gradgradcheck(backward_op, inputs)


@requires_extension
def test_a_wrong_closed_form_fails_gradcheck(monkeypatch):
    """gradcheck above can fail: the closed form with the sign of its first term flipped."""
    from gradext import von_mises

    original_cos = torch.cos
    monkeypatch.setattr(von_mises.torch, "cos", lambda t: -original_cos(t))
    concentration = torch.tensor([0.4, 3.0], **F64)
    x = torch.tensor([0.5, -0.2], **F64).requires_grad_()

    def backward_op(x):
        return torch.ops.gradext._von_mises_rsample_backward(
            torch.ones_like(x), x, torch.zeros(2, **F64), concentration
        )

    assert not torch.autograd.gradcheck(backward_op, (x,), raise_exception=False)


def test_second_derivative_in_the_concentration_raises(implementation):
    concentration = (torch.rand(5, **F64) + 0.5).requires_grad_()
    x = gradext.von_mises_rsample(
        torch.zeros(5, **F64), concentration, generator=torch.Generator().manual_seed(0)
    )
    (g,) = torch.autograd.grad(torch.cos(x).sum(), concentration, create_graph=True)
    with pytest.raises(NotImplementedError, match=r"von_mises_rsample: .*concentration"):
        torch.autograd.grad(g.sum(), concentration)


@requires_extension
def test_first_derivative_with_create_graph_is_the_plain_one():
    concentration = (torch.rand(5, **F64) + 0.5).requires_grad_()
    loc = torch.randn(5, **F64).requires_grad_()

    def first(create_graph):
        x = gradext.von_mises_rsample(
            loc, concentration, generator=torch.Generator().manual_seed(0)
        )
        return torch.autograd.grad(
            torch.sin(x).sum(), (loc, concentration), create_graph=create_graph
        )

    for a, b in zip(first(True), first(False)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)

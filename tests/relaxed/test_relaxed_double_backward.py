"""Gradients of gradients (create_graph=True) through gumbel_softmax and gumbel_sigmoid.
Checked against the reference on the same noise, finite differences and gradcheck of the
backward ops (helpers/higher_order.py says how)."""

from __future__ import annotations

import pytest
import torch

import gradext
from gradext import reference
from helpers.common import requires_extension, tau_tensor
from helpers.higher_order import (
    F64,
    assert_same,
    second_order,
    seeded,
    warnings_are_errors,  # noqa: F401  (autouse fixture)
)


def _relaxed_on_noise(name, uniforms):
    """The reference sample of op `name` on the kernels' uniforms, and its noise transform."""
    if name == "gumbel_softmax":
        return reference.gumbel_softmax_from_noise, -torch.log(-torch.log(uniforms))
    return reference.gumbel_sigmoid_from_noise, torch.log(uniforms) - torch.log1p(-uniforms)


@requires_extension
@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize(
    "name, categories",
    [("gumbel_softmax", 2), ("gumbel_softmax", 7), ("gumbel_softmax", 40), ("gumbel_sigmoid", 3)],
)
def test_relaxed_matches_reference_on_same_noise(device, hard, name, categories):
    logits = torch.randn(6, categories, device=device, **F64).requires_grad_()
    seeded = getattr(torch.ops.gradext, f"_{name}_seeded")
    on_noise, noise = _relaxed_on_noise(
        name, torch.ops.gradext._philox_uniform(logits.detach(), 5, 8)
    )

    def kernels(lg):
        return seeded(lg, tau_tensor(0.7), hard, 5, 8)[0]

    def on_same_noise(lg):
        return on_noise(lg, noise, 0.7, hard)

    assert_same(second_order(kernels, (logits,)), second_order(on_same_noise, (logits,)))


@requires_extension
@pytest.mark.parametrize("hard", [False, True])
def test_gumbel_softmax_public_entry_along_a_middle_dim(device, hard):
    """The public function (eager entry, dim moved last) against the registered seeded op."""
    logits = torch.randn(3, 5, 4, device=device, **F64).requires_grad_()

    def public(lg):
        return gradext.gumbel_softmax(
            lg, tau=0.6, hard=hard, dim=1, generator=seeded(device=device)
        )

    def registered(lg):
        rows = lg.movedim(1, -1)
        y, _ = torch.ops.gradext.gumbel_softmax(
            rows, tau_tensor(0.6), hard, generator=seeded(device=device)
        )
        return y.movedim(-1, 1)

    assert_same(second_order(public, (logits,)), second_order(registered, (logits,)))


@requires_extension
@pytest.mark.parametrize("name", ["gumbel_softmax", "gumbel_sigmoid"])
def test_relaxed_soft_gradgradcheck(device, name):
    logits = torch.randn(4, 6, device=device, **F64).requires_grad_()
    sample = getattr(gradext, name)
    assert torch.autograd.gradgradcheck(
        lambda lg: sample(lg, tau=0.9, generator=seeded(device=device)), (logits,)
    )


@requires_extension
@pytest.mark.parametrize("name", ["gumbel_softmax", "gumbel_sigmoid"])
def test_relaxed_backward_op_gradcheck(device, name):
    op = getattr(torch.ops.gradext, f"_{name}_backward")
    grad = torch.randn(4, 6, device=device, **F64).requires_grad_()
    y_soft = torch.softmax(torch.randn(4, 6, device=device, **F64), -1).requires_grad_()
    assert torch.autograd.gradcheck(lambda g, y: op(g, y, tau_tensor(0.7)), (grad, y_soft))

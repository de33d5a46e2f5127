"""Gradients of gradients (create_graph=True) through categorical_sample's log-probabilities.
Checked against the reference on the same noise, finite differences and gradcheck of the
backward ops (helpers/higher_order.py says how)."""

from __future__ import annotations

import torch

import gradext
from helpers.common import requires_extension
from helpers.higher_order import (
    F64,
    assert_same,
    second_order,
    seeded,
    warnings_are_errors,  # noqa: F401  (autouse fixture)
)


@requires_extension
def test_categorical_log_prob_gradgradcheck(device):
    logits = torch.randn(3, 5, device=device, **F64).requires_grad_()

    def log_prob(lg):
        return gradext.categorical_sample(lg, 4, generator=seeded(device=device))[1]

    assert torch.autograd.gradgradcheck(log_prob, (logits,))


@requires_extension
def test_categorical_matches_reference_on_same_draws(device):
    logits = torch.randn(2, 3, 6, device=device, **F64).requires_grad_()
    index, _ = gradext.categorical_sample(logits.detach(), 5, generator=seeded(device=device))

    def kernels(lg):
        return gradext.categorical_sample(lg, 5, generator=seeded(device=device))[1]

    def on_same_draws(lg):
        log_softmax = torch.log_softmax(lg, -1).expand(5, *lg.shape)
        return log_softmax.gather(-1, index.unsqueeze(-1)).squeeze(-1)

    assert_same(second_order(kernels, (logits,)), second_order(on_same_draws, (logits,)))


@requires_extension
def test_categorical_backward_op_gradcheck(device):
    logits = torch.randn(3, 5, device=device, **F64).requires_grad_()
    grad = torch.randn(4, 3, device=device, **F64).requires_grad_()
    index = torch.randint(0, 5, (4, 3), device=device)
    assert torch.autograd.gradcheck(
        lambda g, lg: torch.ops.gradext._categorical_sample_backward(g, lg, index), (grad, logits)
    )

"""Gradients of gradients (create_graph=True) through score_function_loo and vimco. The
learning signal is a constant of the surrogate (gradext/score_function.py), as in the fallback.
Checked against the reference on the same noise, finite differences and gradcheck of the
backward ops (helpers/higher_order.py says how)."""

from __future__ import annotations

import pytest
import torch

import gradext
from gradext import reference
from helpers.common import requires_extension
from helpers.higher_order import (
    F64,
    assert_same,
    second_order,
    warnings_are_errors,  # noqa: F401  (autouse fixture)
)

# The learning signal is a constant of the surrogate (gradext/score_function.py), as in
# the reference; the tests compare with the reference's autograd on the same inputs.


@requires_extension
@pytest.mark.parametrize("dim", [0, 1])
def test_score_function_loo_matches_reference(device, dim):
    f = torch.randn(5, 4, device=device, **F64).requires_grad_()
    log_prob = torch.randn(5, 4, device=device, **F64).requires_grad_()
    assert_same(
        second_order(lambda a, b: gradext.score_function_loo(a, b, dim), (f, log_prob)),
        second_order(lambda a, b: reference.score_function_loo(a, b, dim), (f, log_prob)),
    )


@requires_extension
@pytest.mark.parametrize("dim", [0, 1])
def test_vimco_matches_reference(device, dim):
    log_weights = (3 * torch.randn(6, 4, device=device, **F64)).requires_grad_()
    log_prob = torch.randn(6, 4, device=device, **F64).requires_grad_()
    assert_same(
        second_order(lambda a, b: gradext.vimco(a, b, dim), (log_weights, log_prob)),
        second_order(lambda a, b: reference.vimco(a, b, dim), (log_weights, log_prob)),
    )


@requires_extension
def test_vimco_third_order_matches_reference():
    log_weights = torch.randn(5, 3, **F64).requires_grad_()
    log_prob = torch.randn(5, 3, **F64).requires_grad_()
    assert_same(
        second_order(lambda a, b: gradext.vimco(a, b), (log_weights, log_prob), order=3),
        second_order(lambda a, b: reference.vimco(a, b), (log_weights, log_prob), order=3),
    )


@requires_extension
def test_score_function_backward_ops_gradcheck(device):
    grad = torch.randn(3, device=device, **F64).requires_grad_()
    values = torch.randn(5, 3, device=device, **F64)
    assert torch.autograd.gradcheck(
        lambda g: torch.ops.gradext._score_function_loo_backward(g, values, 0), (grad,)
    )

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

"""score_function_loo, vimco and categorical_sample under torch.compile(fullgraph=True), and
opcheck on every registered op of the family."""

from __future__ import annotations

import pytest
import torch

import gradext
from conftest import requires_extension

pytestmark = requires_extension


def _discrete_objective(logits, cost):
    """A discrete latent-variable step: K samples, RLOO and VIMCO estimators."""
    index, log_prob = gradext.categorical_sample(logits, 6)  # [6, B]
    f = cost.gather(-1, index.t()).t()                       # [6, B]
    rloo = gradext.score_function_loo(f, log_prob, 0)
    bound = gradext.vimco(-f, log_prob, 0)
    return rloo.sum() + bound.sum()


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_compile_fullgraph_matches_eager(device, backend):
    torch._dynamo.reset()
    compiled = torch.compile(_discrete_objective, fullgraph=True, backend=backend)
    logits = torch.randn(9, 5, device=device, requires_grad=True)
    cost = torch.randn(9, 5, device=device, requires_grad=True)
    torch.manual_seed(0)
    eager = _discrete_objective(logits, cost)
    eager_grads = torch.autograd.grad(eager, (logits, cost))
    torch.manual_seed(0)
    got = compiled(logits, cost)
    got_grads = torch.autograd.grad(got, (logits, cost))
    torch.testing.assert_close(got, eager)
    for g, e in zip(got_grads, eager_grads):
        torch.testing.assert_close(g, e)


@pytest.mark.parametrize("dim", [0, -1])
def test_opcheck_estimators(device, dim):
    values = torch.randn(4, 6, device=device, requires_grad=True)
    log_prob = torch.randn(4, 6, device=device, requires_grad=True)
    for name in ("score_function_loo", "vimco"):
        torch.library.opcheck(getattr(torch.ops.gradext, name).default, (values, log_prob, dim))
    # The backward ops get inputs that require grad, so that opcheck checks their own autograd
    # (their derivatives, for double backward) too.
    grad = torch.randn(6 if dim == 0 else 4, device=device, requires_grad=True)
    torch.library.opcheck(torch.ops.gradext._score_function_loo_backward.default,
                          (grad, values, dim))
    _, stats = torch.ops.gradext.vimco(values.detach(), log_prob.detach(), dim)
    for mask in ([True, True], [True, False], [False, True]):
        torch.library.opcheck(torch.ops.gradext._vimco_backward.default,
                              (grad, values, stats, dim, mask))


def test_opcheck_categorical(device):
    logits = torch.randn(3, 4, 7, device=device, requires_grad=True)
    torch.library.opcheck(torch.ops.gradext.categorical_sample.default, (logits, 5))
    torch.library.opcheck(torch.ops.gradext._categorical_sample_seeded.default, (logits, 5, 1, 2))
    _, index = torch.ops.gradext._categorical_sample_seeded(logits.detach(), 5, 1, 2)
    torch.library.opcheck(torch.ops.gradext._categorical_sample_backward.default,
                          (torch.randn(5, 3, 4, device=device, requires_grad=True), logits,
                           index))

"""score_function_loo and vimco, fed by categorical_sample, under torch.compile(fullgraph=True)."""

from __future__ import annotations

import pytest
import torch

import gradext
from helpers.common import requires_extension

pytestmark = requires_extension


def _discrete_objective(logits, cost):
    """A discrete latent-variable step: K samples, RLOO and VIMCO estimators."""
    index, log_prob = gradext.categorical_sample(logits, 6)  # [6, B]
    f = cost.gather(-1, index.t()).t()  # [6, B]
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

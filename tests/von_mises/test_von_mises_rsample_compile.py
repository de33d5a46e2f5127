"""von_mises_rsample under torch.compile(fullgraph=True): the same samples and gradients as
eager from the same seed, a concentration that is a number or a tensor, and a num_samples sweep
that compiles at most twice (opcheck is a contract: tests/contracts)."""

from __future__ import annotations

import pytest
import torch

import gradext
from helpers.common import requires_extension

pytestmark = requires_extension


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_compile_fullgraph_matches_eager(backend):
    torch._dynamo.reset()

    def loss_fn(loc, log_concentration):
        x = gradext.von_mises_rsample(loc, log_concentration.exp(), 3)
        w = gradext.von_mises_rsample(loc, 2.0)
        return (torch.cos(x) * x).sum() + torch.sin(w).sum()

    compiled = torch.compile(loss_fn, fullgraph=True, backend=backend)
    loc = torch.randn(8, 16).requires_grad_()
    log_c = torch.randn(16).requires_grad_()
    torch.manual_seed(3)
    eager_loss = loss_fn(loc, log_c)
    eager_grads = torch.autograd.grad(eager_loss, (loc, log_c))
    torch.manual_seed(3)
    compiled_loss = compiled(loc, log_c)
    compiled_grads = torch.autograd.grad(compiled_loss, (loc, log_c))
    torch.testing.assert_close(compiled_loss, eager_loss, rtol=1e-5, atol=1e-5)
    for got, want in zip(compiled_grads, eager_grads):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_a_sweep_over_num_samples_compiles_at_most_twice():
    compilations = []

    def backend(graph, example_inputs):
        compilations.append(graph)
        return graph.forward

    torch._dynamo.reset()

    @torch.compile(fullgraph=True, backend=backend)
    def draw(loc, k):
        return gradext.von_mises_rsample(loc, 1.0, k).sum()

    loc = torch.randn(8, 5)
    for k in (1, 2, 3, 5, 8):
        draw(loc, k)
    assert len(compilations) <= 2, len(compilations)

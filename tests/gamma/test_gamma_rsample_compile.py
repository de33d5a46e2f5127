"""gamma_rsample under torch.compile(fullgraph=True): the same samples and gradients as eager
from the same seed, a rate that is a number or a tensor, and a num_samples sweep that compiles at
most twice (opcheck is a contract: tests/contracts)."""

from __future__ import annotations

import pytest
import torch

import gradext
from helpers.common import requires_extension

pytestmark = requires_extension


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_compile_fullgraph_matches_eager(backend):
    torch._dynamo.reset()

    def loss_fn(log_concentration, rate):
        z = gradext.gamma_rsample(log_concentration.exp(), rate, 3)
        w = gradext.gamma_rsample(log_concentration.exp(), 2.0)
        return (z.log() * z).sum() + w.sum()

    compiled = torch.compile(loss_fn, fullgraph=True, backend=backend)
    log_c = torch.randn(8, 16).requires_grad_()
    rate = (torch.rand(16) + 0.5).requires_grad_()
    torch.manual_seed(3)
    eager_loss = loss_fn(log_c, rate)
    eager_grads = torch.autograd.grad(eager_loss, (log_c, rate))
    torch.manual_seed(3)
    compiled_loss = compiled(log_c, rate)
    compiled_grads = torch.autograd.grad(compiled_loss, (log_c, rate))
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
    def draw(concentration, k):
        return gradext.gamma_rsample(concentration, 1.0, k).sum()

    c = torch.rand(8, 5) + 0.5
    for k in (1, 2, 3, 5, 8):
        draw(c, k)
    assert len(compilations) <= 2, len(compilations)

"""CUDA-only behaviour of categorical_sample (skipped without a GPU): the CUDA kernels draw what
the CPU kernels draw for the same seed, and CUDA graphs replay with fresh draws. The
device-parametrized tests cover the rest on both devices."""

from __future__ import annotations

import pytest
import torch

import gradext
from helpers.common import requires_cuda

pytestmark = [requires_cuda, pytest.mark.cuda]


@pytest.mark.parametrize(
    "rows, categories",
    [(5, 2), (5, 10), (700, 10), (5, 64), (700, 65), (5, 1024), (5, 1025), (5, 40_000)],
)
def test_categorical_cpu_and_cuda_draw_the_same(rows, categories):
    """Same (seed, offset): the same Gumbel noise, so the same indices; log-probabilities and
    the backward agree to rounding (the row reductions run in another order)."""
    logits = torch.randn(rows, categories) * 2
    lp_cpu, idx_cpu = torch.ops.gradext._categorical_sample_seeded(logits, 3, 21, 4)
    lp_gpu, idx_gpu = torch.ops.gradext._categorical_sample_seeded(logits.cuda(), 3, 21, 4)
    assert torch.equal(idx_gpu.cpu(), idx_cpu)
    torch.testing.assert_close(lp_gpu.cpu(), lp_cpu, rtol=1e-5, atol=1e-5)
    grad = torch.randn(3, rows)
    back_cpu = torch.ops.gradext._categorical_sample_backward(grad, logits, idx_cpu)
    back_gpu = torch.ops.gradext._categorical_sample_backward(grad.cuda(), logits.cuda(), idx_gpu)
    torch.testing.assert_close(back_gpu.cpu(), back_cpu, rtol=1e-5, atol=1e-6)


def test_categorical_in_cuda_graph_gives_fresh_draws():
    logits = torch.zeros(64, 1000, device="cuda")
    static = {}
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        gradext.categorical_sample(logits, 2)  # warm-up outside the graph
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static["index"], _ = gradext.categorical_sample(logits, 2)
    graph.replay()
    first = static["index"].clone()
    graph.replay()
    assert not torch.equal(first, static["index"])

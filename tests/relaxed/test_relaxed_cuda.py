"""CUDA-only behaviour of gumbel_softmax / gumbel_sigmoid (skipped without a GPU); the same
properties are tested on the CPU kernels by the device-parametrized tests."""

from __future__ import annotations

import pytest
import torch

import gradext
from helpers.common import ALL_DTYPES, requires_cuda, tau_tensor

pytestmark = [requires_cuda, pytest.mark.cuda]


# Row lengths on each side of the CUDA kernels' group sizes (4 threads up to 64 categories, a
# warp up to 1024, a block beyond), and row counts that leave groups of a warp or block without a
# row (7) or span several blocks of 64 rows with a partial last one (1000).
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize(
    "rows, categories",
    [(7, 2), (7, 10), (1000, 10), (7, 32), (7, 64), (1000, 65), (7, 1000), (7, 1025), (3, 40_000)],
)
def test_cpu_and_cuda_agree_for_the_same_seed(dtype, rows, categories):
    """Same (seed, offset): the same noise, hence the same one-hot; soft samples agree to
    rounding (the row sums are reduced in a different order)."""
    logits = (torch.randn(rows, categories) * 2).to(dtype)
    y_cpu, soft_cpu = torch.ops.gradext._gumbel_softmax_seeded(logits, tau_tensor(0.5), True, 77, 8)
    y_gpu, soft_gpu = torch.ops.gradext._gumbel_softmax_seeded(
        logits.cuda(), tau_tensor(0.5), True, 77, 8
    )
    assert torch.equal(y_gpu.cpu(), y_cpu)
    tol = {torch.float64: 1e-12, torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 2e-2}[
        dtype
    ]
    torch.testing.assert_close(soft_gpu.cpu(), soft_cpu, rtol=tol, atol=tol)
    u_cpu = torch.ops.gradext._philox_uniform(logits, 77, 8)
    u_gpu = torch.ops.gradext._philox_uniform(logits.cuda(), 77, 8)
    assert torch.equal(u_gpu.cpu(), u_cpu)


def test_sigmoid_cpu_and_cuda_agree():
    logits = torch.randn(1001)
    y_cpu, _ = torch.ops.gradext._gumbel_sigmoid_seeded(logits, tau_tensor(0.3), False, 5, 0)
    y_gpu, _ = torch.ops.gradext._gumbel_sigmoid_seeded(logits.cuda(), tau_tensor(0.3), False, 5, 0)
    torch.testing.assert_close(y_gpu.cpu(), y_cpu, rtol=1e-6, atol=1e-6)


def test_backward_kernels_match_cpu():
    for rows, categories in ((9, 10), (1000, 64), (9, 65), (9, 3000)):
        y = torch.softmax(torch.randn(rows, categories, dtype=torch.float64), -1)
        g = torch.randn_like(y)
        cpu = torch.ops.gradext._gumbel_softmax_backward(g, y, 0.4)
        gpu = torch.ops.gradext._gumbel_softmax_backward(g.cuda(), y.cuda(), 0.4)
        torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-12, atol=1e-12)


def test_cuda_graph_capture_fresh_samples():
    logits = torch.randn(512, 10, device="cuda")
    out = torch.empty_like(logits)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        out.copy_(gradext.gumbel_softmax(logits, hard=True))
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out.copy_(gradext.gumbel_softmax(logits, hard=True))
    graph.replay()
    torch.cuda.synchronize()
    first = out.clone()
    graph.replay()
    torch.cuda.synchronize()
    assert not torch.equal(first, out)
    assert torch.equal(out.sum(-1), torch.ones(512, device="cuda"))


@pytest.mark.parametrize("name", ["gumbel_softmax", "gumbel_sigmoid"])
def test_annealed_tau_under_compiled_cuda_graphs_is_not_stale(name):
    """tau reaches the kernels as a CPU scalar tensor read at launch; under torch.compile with
    CUDA graphs ("reduce-overhead") a changing tau must not be replayed from the first capture.
    The statistic does not depend on which noise a replay draws: the mean sharpness of the soft
    samples (the mean largest probability per row; for the sigmoid the mean distance from 1/2)
    over 4096 rows, whose standard error is about 0.004, against eager's at the same tau; a
    stale tau of 1.0 at tau 0.3 would be off by more than 0.1."""
    torch._dynamo.reset()
    fn = getattr(gradext, name)
    compiled = torch.compile(lambda x, tau: fn(x, tau=tau), mode="reduce-overhead", fullgraph=True)
    logits = torch.randn(4096, 10, device="cuda")

    def sharpness(y):
        return y.amax(-1).mean() if name == "gumbel_softmax" else (y - 0.5).abs().mean()

    for tau in (1.0, 0.6, 0.3):
        for _ in range(3):  # warm-up, record, replay
            got = sharpness(compiled(logits, tau)).item()
        want = sharpness(fn(logits, tau=tau)).item()
        assert abs(got - want) < 0.03, (tau, got, want)

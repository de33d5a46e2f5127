"""CUDA-only behaviour of gaussian_rsample (skipped without a GPU). The same properties are
tested on the CPU kernels by the device-parametrized tests in the other files."""

from __future__ import annotations

import pytest
import torch

import gradext
from helpers.common import ALL_DTYPES, requires_cuda

pytestmark = [requires_cuda, pytest.mark.cuda]


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("shape, num_samples", [((1000, 64), 3), ((7, 5), None), ((3,), 5)])
def test_cpu_and_cuda_draw_the_same_noise(dtype, shape, num_samples):
    """Same (seed, offset) -> same noise on both devices: bitwise in float32 and the half types
    (the same float operations, no FMA contraction on either side), to rounding in float64."""
    zeros = torch.zeros(shape, dtype=dtype)
    cpu, _ = torch.ops.gradext._gaussian_rsample_seeded(zeros, zeros, num_samples, 1234, 56)
    cuda, _ = torch.ops.gradext._gaussian_rsample_seeded(
        zeros.cuda(), zeros.cuda(), num_samples, 1234, 56
    )
    if dtype == torch.float64:
        torch.testing.assert_close(cuda.cpu(), cpu, rtol=1e-13, atol=1e-13)
    else:
        assert torch.equal(cuda.cpu(), cpu)


def test_dense_and_strided_kernels_agree():
    mu = torch.randn(256, 64, device="cuda")
    logvar = torch.randn(256, 64, device="cuda")
    gen = torch.Generator(device="cuda")
    dense = gradext.gaussian_rsample(mu, logvar, 3, generator=gen.manual_seed(0))
    strided = gradext.gaussian_rsample(
        mu.t().contiguous().t(), logvar, 3, generator=gen.manual_seed(0)
    )
    torch.testing.assert_close(dense, strided, rtol=0, atol=0)
    mu_leaf = mu.clone().requires_grad_(True)
    lv_leaf = logvar.clone().requires_grad_(True)
    upstream = torch.randn_like(dense)
    z = gradext.gaussian_rsample(mu_leaf, lv_leaf, 3, generator=gen.manual_seed(0))
    g_dense = torch.autograd.grad(z, (mu_leaf, lv_leaf), upstream)
    z = gradext.gaussian_rsample(
        mu_leaf.t().contiguous().t(),
        lv_leaf[:, None, :].squeeze(1),
        3,
        generator=gen.manual_seed(0),
    )
    g_strided = torch.autograd.grad(
        z, (mu_leaf, lv_leaf), upstream.transpose(1, 2).contiguous().transpose(1, 2)
    )
    for a, b in zip(g_dense, g_strided):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("num_samples", [None, 4])
def test_broadcast_logvar_takes_the_blocked_kernel_bitwise(num_samples):
    """A per-dimension logvar [D] against mu [B, D] (read through the layout, one Philox block
    per thread) gives bitwise the sample of the expanded, dense logvar, and its gradient is the
    dense gradient summed over the batch."""
    mu = torch.randn(256, 64, device="cuda")
    logvar = torch.randn(64, device="cuda")
    gen = torch.Generator(device="cuda")
    lv_leaf = logvar.clone().requires_grad_(True)
    dense_leaf = logvar.expand(256, 64).contiguous().requires_grad_(True)
    broadcast = gradext.gaussian_rsample(mu, lv_leaf, num_samples, generator=gen.manual_seed(3))
    dense = gradext.gaussian_rsample(mu, dense_leaf, num_samples, generator=gen.manual_seed(3))
    assert torch.equal(broadcast, dense)
    upstream = torch.randn_like(dense)
    (g_broadcast,) = torch.autograd.grad(broadcast, lv_leaf, upstream)
    (g_dense,) = torch.autograd.grad(dense, dense_leaf, upstream)
    torch.testing.assert_close(g_broadcast, g_dense.sum(0), rtol=1e-5, atol=1e-5)


def test_cuda_graph_capture_gives_fresh_noise_each_replay():
    mu = torch.zeros(4096, device="cuda", requires_grad=False)
    logvar = torch.zeros(4096, device="cuda")
    static_out = torch.empty(2, 4096, device="cuda")
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):  # warm up outside capture
        static_out.copy_(gradext.gaussian_rsample(mu, logvar, 2))
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out.copy_(gradext.gaussian_rsample(mu, logvar, 2))
    draws = []
    for _ in range(3):
        graph.replay()
        torch.cuda.synchronize()
        draws.append(static_out.clone())
    assert not torch.equal(draws[0], draws[1]) and not torch.equal(draws[1], draws[2])
    for d in draws:
        assert abs(d.mean().item()) < 5 / (d.numel() ** 0.5)
        assert abs(d.var().item() - 1) < 5 * (2 / d.numel()) ** 0.5


def test_cuda_graph_capture_forward_and_backward():
    """Backward reads (seed, offset) from device memory, so a captured training step's
    gradients match its own noise on every replay."""
    mu = torch.randn(512, 16, device="cuda", requires_grad=True)
    logvar = torch.randn(512, 16, device="cuda", requires_grad=True)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(2):
            mu.grad = logvar.grad = None
            z = gradext.gaussian_rsample(mu, logvar, 4)
            (z * z).sum().backward()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    mu.grad = logvar.grad = None
    with torch.cuda.graph(graph):
        static_z = gradext.gaussian_rsample(mu, logvar, 4)
        (static_z * static_z).sum().backward()
    for _ in range(2):
        graph.replay()
        torch.cuda.synchronize()
        z = static_z.detach()
        torch.testing.assert_close(mu.grad, (2 * z).sum(0), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(
            logvar.grad, (2 * z * (z - mu.detach()) / 2).sum(0), rtol=1e-4, atol=1e-4
        )


def test_cuda_generator_reproducibility_and_default_seed():
    mu = torch.zeros(1000, device="cuda")
    torch.manual_seed(5)
    a = gradext.gaussian_rsample(mu, mu, 2)
    torch.manual_seed(5)
    b = gradext.gaussian_rsample(mu, mu, 2)
    assert torch.equal(a, b)


def test_large_tensor_64bit_indexing_path_smoke():
    """More than 2^31 output elements index with 64-bit arithmetic (K * N > 2^31)."""
    free, _ = torch.cuda.mem_get_info()
    if free < 12 * 2**30:
        pytest.skip("needs 12 GiB of free GPU memory")
    mu = torch.zeros(1 << 20, device="cuda", dtype=torch.float16)
    z = gradext.gaussian_rsample(mu, mu, 2100)  # 2.2e9 elements, 4.4 GB
    tail = z[-1].float()
    assert torch.isfinite(tail).all() and abs(tail.mean().item()) < 0.01

"""CUDA-only behaviour of von_mises_rsample (skipped without a GPU; the same properties are
tested on the CPU kernels in the other files): the same samples as the CPU for a given (seed,
offset), whatever the launch, and the same gradients."""

from __future__ import annotations

import pytest
import torch

import gradext
from helpers.common import ALL_DTYPES, requires_cuda

pytestmark = [requires_cuda, pytest.mark.cuda]


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("shape, num_samples", [((1000, 64), 3), ((7, 5), None), ((3,), 5)])
def test_cpu_and_cuda_draw_the_same_samples(dtype, shape, num_samples):
    """Bitwise in float32 and the half types (the same float operations, accept/reject
    decisions included, no FMA contraction on either side), to rounding in float64."""
    g = torch.Generator().manual_seed(0)
    concentration = (torch.rand(shape, generator=g) * 20 + 1e-3).to(dtype)
    loc = (torch.randn(shape, generator=g) * 4).to(dtype)
    seeded = torch.ops.gradext._von_mises_rsample_seeded
    cpu = seeded(loc, concentration, num_samples, 1234, 56)
    cuda = seeded(loc.cuda(), concentration.cuda(), num_samples, 1234, 56)
    if dtype == torch.float64:
        torch.testing.assert_close(cuda.cpu(), cpu, rtol=1e-13, atol=1e-13)
    else:
        assert torch.equal(cuda.cpu(), cpu)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cpu_and_cuda_gradients_agree(dtype):
    concentration = torch.tensor([1e-3, 0.3, 1.0, 7.0, 300.0, 1e4], dtype=dtype)
    loc = torch.tensor(0.5, dtype=dtype)
    grads = []
    for device in ("cpu", "cuda"):
        c = concentration.to(device).requires_grad_()
        m = loc.to(device).requires_grad_()
        x = torch.ops.gradext._von_mises_rsample_seeded(m, c, 4, 9, 8)
        grads.append([t.cpu() for t in torch.autograd.grad(torch.cos(x).sum(), (m, c))])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-12 if dtype == torch.float64 else 1e-6, atol=0)


def test_default_generator_advances_and_reproduces():
    m = torch.randn(4096, device="cuda")
    torch.manual_seed(1)
    a, b = gradext.von_mises_rsample(m, 2.0), gradext.von_mises_rsample(m, 2.0)
    torch.manual_seed(1)
    assert torch.equal(gradext.von_mises_rsample(m, 2.0), a) and not torch.equal(a, b)

"""CUDA-only behaviour of gamma_rsample (skipped without a GPU; the same properties are tested on
the CPU kernels in the other files): the same samples as the CPU for a given (seed, offset),
whatever the launch, and the same gradients."""

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
    concentration = (torch.rand(shape, generator=g) * 5 + 1e-3).to(dtype)
    rate = torch.tensor(1.5, dtype=dtype)
    seeded = torch.ops.gradext._gamma_rsample_seeded
    cpu = seeded(concentration, rate, num_samples, 1234, 56)
    cuda = seeded(concentration.cuda(), rate.cuda(), num_samples, 1234, 56)
    if dtype == torch.float64:
        torch.testing.assert_close(cuda.cpu(), cpu, rtol=1e-13, atol=0)
    else:
        assert torch.equal(cuda.cpu(), cpu)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cpu_and_cuda_gradients_agree(dtype):
    concentration = torch.tensor([1e-3, 0.3, 1.0, 7.0, 300.0, 1e4], dtype=dtype)
    rate = torch.tensor(0.5, dtype=dtype)
    grads = []
    for device in ("cpu", "cuda"):
        c = concentration.to(device).requires_grad_()
        r = rate.to(device).requires_grad_()
        z = torch.ops.gradext._gamma_rsample_seeded(c, r, 4, 9, 8)
        grads.append([t.cpu() for t in torch.autograd.grad(z.sum(), (c, r))])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-12 if dtype == torch.float64 else 1e-6, atol=0)


def test_default_generator_advances_and_reproduces():
    c = torch.rand(4096, device="cuda") + 0.5
    torch.manual_seed(1)
    a, b = gradext.gamma_rsample(c), gradext.gamma_rsample(c)
    torch.manual_seed(1)
    assert torch.equal(gradext.gamma_rsample(c), a) and not torch.equal(a, b)

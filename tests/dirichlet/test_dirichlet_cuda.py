"""CUDA-only behaviour of dirichlet_rsample (skipped without a GPU; the same properties are
tested on the CPU kernels in the other files): the same samples and log-Gammas as the CPU for a
given (seed, offset), and the same gradients."""

from __future__ import annotations

import pytest
import torch

from helpers.common import ALL_DTYPES, requires_cuda

pytestmark = [requires_cuda, pytest.mark.cuda]


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("shape, num_samples", [((1000, 16), 3), ((7, 2), None), ((3, 300), 2)])
def test_cpu_and_cuda_draw_the_same_samples(dtype, shape, num_samples):
    g = torch.Generator().manual_seed(0)
    concentration = (torch.rand(shape, generator=g) * 5 + 1e-3).to(dtype)
    seeded = torch.ops.gradext._dirichlet_rsample_seeded
    cpu = seeded(concentration, num_samples, 1234, 56)
    cuda = seeded(concentration.cuda(), num_samples, 1234, 56)
    for a, b in zip(cuda, cpu):
        if dtype == torch.float64:
            torch.testing.assert_close(a.cpu(), b, rtol=1e-13, atol=0)
        else:
            assert torch.equal(a.cpu(), b)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cpu_and_cuda_gradients_agree(dtype):
    concentration = torch.tensor([[1e-3, 0.3, 1.0, 7.0], [300.0, 2.0, 0.5, 0.5]], dtype=dtype)
    grads = []
    for device in ("cpu", "cuda"):
        c = concentration.to(device).requires_grad_()
        x, _ = torch.ops.gradext._dirichlet_rsample_seeded(c, 4, 9, 8)
        (grad,) = torch.autograd.grad((x * x).sum(), c)
        grads.append(grad.cpu())
    tolerance = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(grads[1], grads[0], rtol=tolerance, atol=1e-30)

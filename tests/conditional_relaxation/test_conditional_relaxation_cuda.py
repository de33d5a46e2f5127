"""CUDA-only behaviour of conditional_relaxation (skipped without a GPU): the CUDA kernels against
the CPU kernels on the same (seed, offset). The properties themselves (values against the
reference on the kernels' own noise, distributions, gradients) are tested on the CPU path by the
other files of this folder."""

from __future__ import annotations

import pytest
import torch

from helpers.common import ALL_DTYPES, requires_cuda, tau_tensor

pytestmark = [requires_cuda, pytest.mark.cuda]

ops = torch.ops.gradext
TOLERANCE = {torch.float64: 1e-12, torch.float32: 2e-5, torch.float16: 2e-3, torch.bfloat16: 2e-2}


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("categorical", [False, True], ids=["bernoulli", "categorical"])
@pytest.mark.parametrize("shape", [(7, 2), (1000, 10), (33, 3), (5, 700)])
def test_cpu_and_cuda_agree_for_the_same_seed(dtype, categorical, shape):
    """Same (seed, offset): bitwise the same noise and discrete sample; relaxations, gradient and
    JVP within rounding (row sums are reduced in another order); the published rng_state."""
    logits = (torch.randn(shape) * 2).to(dtype)
    logits[0, 0] = -float("inf") if categorical else logits[0, 0]
    tau = tau_tensor(0.6)
    cpu = ops._conditional_relaxation_seeded(logits, tau, categorical, 77, 8)
    gpu = ops._conditional_relaxation_seeded(logits.cuda(), tau, categorical, 77, 8)
    assert torch.equal(gpu[0].cpu(), cpu[0])
    assert gpu[3].cpu().tolist() == [77, 8]
    tol = TOLERANCE[dtype]
    for a, b in zip(gpu[1:3], cpu[1:3]):
        torch.testing.assert_close(a.cpu(), b, rtol=tol, atol=tol)
    noise_cpu = ops._conditional_relaxation_noise(logits, cpu[3], categorical)
    noise_gpu = ops._conditional_relaxation_noise(logits.cuda(), gpu[3], categorical)
    for a, b in zip(noise_gpu, noise_cpu):
        assert torch.equal(a.cpu(), b)
    grad_soft, grad_cond = torch.randn(shape).to(dtype), torch.randn(shape).to(dtype)
    back_cpu = ops._conditional_relaxation_backward(
        grad_soft, grad_cond, logits, tau, cpu[3], categorical
    )
    back_gpu = ops._conditional_relaxation_backward(
        grad_soft.cuda(), grad_cond.cuda(), logits.cuda(), tau, gpu[3], categorical
    )
    torch.testing.assert_close(back_gpu.cpu(), back_cpu, rtol=tol, atol=tol)
    jvp_cpu = ops._conditional_relaxation_jvp(grad_soft, logits, tau, cpu[3], categorical)
    jvp_gpu = ops._conditional_relaxation_jvp(
        grad_soft.cuda(), logits.cuda(), tau, gpu[3], categorical
    )
    for a, b in zip(jvp_gpu, jvp_cpu):
        torch.testing.assert_close(a.cpu(), b, rtol=tol, atol=tol)


def test_generator_calls_differ_and_replay():
    """Consecutive calls on one CUDA generator draw different noise; a reseeded generator draws
    the same again."""
    logits = torch.randn(64, 10, device="cuda")
    g = torch.Generator(device="cuda").manual_seed(3)
    first = ops.conditional_relaxation(logits, tau_tensor(0.5), True, generator=g)
    second = ops.conditional_relaxation(logits, tau_tensor(0.5), True, generator=g)
    assert not torch.equal(first[1], second[1])
    g.manual_seed(3)
    again = ops.conditional_relaxation(logits, tau_tensor(0.5), True, generator=g)
    for a, b in zip(first, again):
        assert torch.equal(a, b)

"""CUDA-only behaviour of score_function_loo and vimco (skipped without a
GPU): the CUDA kernels against the CPU kernels on the same inputs and seeds, and sizes that only
a GPU run makes worth testing. The device-parametrized tests cover the rest on both devices."""

from __future__ import annotations

import pytest
import torch

import gradext
from helpers.common import ALL_DTYPES, requires_cuda
from helpers.oracles import rloo_log_prob_grad, vimco_gradients

pytestmark = [requires_cuda, pytest.mark.cuda]

# float32 follows the same operations in the same order on both devices (leave_one_out.h, FP
# contraction off): bitwise. float64 uses each platform's libm; the half types round once more.
EXACT = {torch.float32: 0.0, torch.float64: 1e-12, torch.float16: 1e-3, torch.bfloat16: 8e-3}


def _grads_on(device, estimator, values, log_prob, dim, grad):
    v = values.to(device).requires_grad_()
    lp = log_prob.to(device).requires_grad_()
    out = estimator(v, lp, dim)
    return (out, *torch.autograd.grad(out, (v, lp), grad.to(device)))


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("shape, dim", [((16, 1000), 0), ((7, 3, 130), 1), ((500, 64), -1)])
@pytest.mark.parametrize("estimator", [gradext.score_function_loo, gradext.vimco])
def test_cuda_matches_cpu(dtype, shape, dim, estimator):
    values = (3 * torch.randn(shape)).to(dtype)
    log_prob = torch.randn(shape).to(dtype)
    reduced = list(shape)
    del reduced[dim]
    grad = torch.randn(reduced).to(dtype)
    cpu = _grads_on("cpu", estimator, values, log_prob, dim, grad)
    gpu = _grads_on("cuda", estimator, values, log_prob, dim, grad)
    tol = EXACT[dtype]
    for c, g in zip(cpu, gpu):
        torch.testing.assert_close(g.cpu(), c, rtol=tol, atol=tol)


def test_large_batch_against_oracles():
    """2^20 datapoints with K = 8: the grid-stride loops cover every datapoint."""
    values = torch.randn(8, 1 << 20, device="cuda", dtype=torch.float64)
    log_prob = torch.zeros_like(values)
    grad = torch.randn(1 << 20, device="cuda", dtype=torch.float64)
    _, _, grad_log_prob = _grads_on("cuda", gradext.score_function_loo, values, log_prob, 0, grad)
    torch.testing.assert_close(grad_log_prob, rloo_log_prob_grad(values, grad, 0))
    _, grad_weights, grad_log_prob = _grads_on("cuda", gradext.vimco, values, log_prob, 0, grad)
    expected_weights, expected_log_prob = vimco_gradients(values, grad, 0)
    torch.testing.assert_close(grad_weights, expected_weights)
    torch.testing.assert_close(grad_log_prob, expected_log_prob)


# Row lengths on each side of the CUDA kernels' group sizes (4 threads up to 64 categories, a
# warp up to 1024, a block beyond); 5 x 3 draws leave groups without a draw, 700 x 3 span blocks.

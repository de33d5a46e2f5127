"""torch.func.vmap of score_function_loo and vimco against a Python loop, and per-sample
gradients (vmap of grad) through the fused backward ops' batching rules; kernels and fallback."""

from __future__ import annotations

import pytest
import torch

import gradext

F64 = dict(dtype=torch.float64)
TIGHT = dict(rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", ["score_function_loo", "vimco"])
@pytest.mark.parametrize("in_dims", [(2, 2), (0, 2), (None, 1)])
@pytest.mark.parametrize("dim", [0, -1])
def test_vmap_of_an_estimator_equals_a_loop(implementation, name, in_dims, dim):
    op = getattr(gradext, name)
    shapes = {0: (4, 5, 6), 1: (5, 4, 6), 2: (5, 6, 4), None: (5, 6)}
    values = torch.randn(shapes[in_dims[0]], **F64)
    log_prob = torch.randn(shapes[in_dims[1]], **F64)

    def item(t, d, i):
        return t if d is None else t.select(d, i)

    batched = torch.vmap(lambda a, b: op(a, b, dim), in_dims=in_dims)(values, log_prob)
    loop = torch.stack(
        [op(item(values, in_dims[0], i), item(log_prob, in_dims[1], i), dim) for i in range(4)]
    )
    torch.testing.assert_close(batched, loop, **TIGHT)


@pytest.mark.parametrize("name", ["score_function_loo", "vimco"])
def test_per_sample_gradients_equal_a_loop(implementation, name):
    """vmap(grad): one gradient per vmapped item, through the backward ops' batching rules."""
    op = getattr(gradext, name)
    values = torch.randn(3, 5, 6, **F64)  # vmapped over dim 0
    log_prob = torch.randn(5, 6, **F64)  # shared

    def loss(a, b):
        return torch.sin(op(a * b, b, 0)).sum()

    batched = torch.vmap(torch.func.grad(loss, argnums=(0, 1)), in_dims=(0, None))(values, log_prob)
    for i in range(3):
        a = values[i].clone().requires_grad_()
        b = log_prob.clone().requires_grad_()
        expected = torch.autograd.grad(loss(a, b), (a, b))
        for got, want in zip(batched, expected):
            torch.testing.assert_close(got[i], want, **TIGHT)

"""Helpers of the double-backward tests: derivatives of any order of a fixed nonlinear scalar,
float64 comparison, and the fixture that turns torch's "autograd kernel was not registered"
warning (a silently dropped derivative) into an error.

Each family's double-backward tests check the derivatives of its fused backward ops three
independent ways: against autograd on the pure-PyTorch reference with the same noise (float64),
by finite differences where the gradient is the derivative of the value, and by gradcheck of
each backward op on its own."""

from __future__ import annotations

import warnings

import pytest
import torch

F64 = dict(dtype=torch.float64)
TIGHT = dict(rtol=1e-10, atol=1e-10)


def seeded(seed=7, device="cpu"):
    return torch.Generator(device=device).manual_seed(seed)


def second_order(fn, inputs, order=2):
    """Derivatives of order `order` of a fixed scalar built from fn(*inputs).

    The first loss is nonlinear in the output, so the incoming gradient of the op depends on its
    output and every derivative of the backward op takes part; each later loss is a fixed
    nonlinear function of the previous gradients."""
    out = fn(*inputs)
    weights = torch.linspace(-1.0, 2.0, out.numel(), dtype=out.dtype, device=out.device)
    loss = (weights.view(out.shape) * out + 0.3 * out**3).sum()
    for step in range(1, order + 1):
        grads = torch.autograd.grad(loss, inputs, create_graph=step < order, allow_unused=True)
        if step == order:
            return grads
        loss = sum((torch.sin(g) * (1.0 + i) + 0.5 * g**2).sum() for i, g in enumerate(grads))


def assert_same(actual, expected):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert a is not None and e is not None
        torch.testing.assert_close(a, e, **TIGHT)


@pytest.fixture(autouse=True)
def warnings_are_errors():
    """torch warns (and drops the derivative) when it backpropagates through an op without an
    autograd kernel: every test here runs with that warning as an error."""
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*autograd kernel was not registered.*")
        yield

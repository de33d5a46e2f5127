"""gumbel_sigmoid (binary Concrete): values on the same noise, exact 0/1 hard samples with the
straight-through gradient, Bernoulli frequencies, NaN-freedom, errors."""

from __future__ import annotations

import math

import pytest
import torch

import gradext
from gradext import reference
from helpers.common import ALL_DTYPES, requires_extension, tau_tensor, tolerance


@requires_extension
@pytest.mark.parametrize("hard", [False, True])
def test_matches_reference_on_same_noise(device, hard):
    logits = torch.randn(37, 5, dtype=torch.float64, device=device)
    y, _ = torch.ops.gradext._gumbel_sigmoid_seeded(logits, tau_tensor(0.6), hard, 2, 12)
    u = torch.ops.gradext._philox_uniform(logits, 2, 12)
    noise = torch.log(u) - torch.log1p(-u)
    expected = reference.gumbel_sigmoid_from_noise(logits, noise, 0.6, hard)
    torch.testing.assert_close(y, expected, **tolerance(torch.float64))


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_hard_is_exactly_zero_or_one_and_never_nan(implementation, device, dtype):
    logits = torch.randn(1 << 20, device=device) * 5
    logits[:1000] = math.inf
    logits[1000:2000] = -math.inf
    logits = logits.to(dtype)
    hard = gradext.gumbel_sigmoid(logits, tau=0.1, hard=True)
    assert torch.all((hard == 0) | (hard == 1))
    assert torch.all(hard[:1000] == 1) and torch.all(hard[1000:2000] == 0)
    soft = gradext.gumbel_sigmoid(logits, tau=0.1)
    assert torch.isfinite(soft).all() and ((soft >= 0) & (soft <= 1)).all()


def test_bernoulli_frequencies(implementation, device):
    """Hard samples are Bernoulli(sigmoid(logits)): a z-test per probability (200k draws each),
    |z| < 4.5."""
    logits = torch.tensor([-3.0, -0.5, 0.0, 1.0, 4.0], device=device)
    draws = 200_000
    y = gradext.gumbel_sigmoid(
        logits.expand(draws, 5).contiguous(),
        hard=True,
        generator=torch.Generator(device=device).manual_seed(8),
    )
    freq = y.double().mean(0).cpu()
    p = torch.sigmoid(logits.double()).cpu()
    z = (freq - p) / torch.sqrt(p * (1 - p) / draws)
    assert torch.all(z.abs() < 4.5), z


def test_straight_through_gradient(implementation, device):
    tau = 0.7
    logits = torch.randn(50, dtype=torch.float64, device=device, requires_grad=True)
    upstream = torch.randn(50, dtype=torch.float64, device=device)
    grads, softs = [], []
    for hard in (False, True):
        y = gradext.gumbel_sigmoid(
            logits, tau, hard, generator=torch.Generator(device=device).manual_seed(6)
        )
        grads.append(torch.autograd.grad(y, logits, upstream)[0])
        softs.append(y.detach())
    torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=0)
    ys = softs[0]
    torch.testing.assert_close(grads[0], upstream * ys * (1 - ys) / tau)


@pytest.mark.parametrize("tau", [0.0, -2.0])
def test_bad_tau(implementation, tau):
    with pytest.raises(ValueError, match=r"gumbel_sigmoid: tau must be a finite number > 0"):
        gradext.gumbel_sigmoid(torch.zeros(3), tau=tau)


def test_integer_logits(implementation):
    with pytest.raises(TypeError, match=r"gumbel_sigmoid: logits must be a floating-point tensor"):
        gradext.gumbel_sigmoid(torch.zeros(3, dtype=torch.int32))

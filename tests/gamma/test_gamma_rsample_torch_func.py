"""gamma_rsample under torch.func: vmap with randomness="different" is the call on the batched
parameters, bitwise (the batching rule is that call), and per-example gradients (vmap of grad)
are the batched call's gradient split per example. grad and jacrev of every registry op are
contract tests (tests/contracts/test_contract_torch_func.py)."""

from __future__ import annotations

import pytest
import torch

import gradext
from helpers.common import requires_extension

pytestmark = requires_extension
F64 = dict(dtype=torch.float64)


def _sample(concentration, rate, num_samples=None):
    return gradext.gamma_rsample(
        concentration, rate, num_samples, generator=torch.Generator().manual_seed(3)
    )


@pytest.mark.parametrize("num_samples", [None, 2])
@pytest.mark.parametrize("in_dim", [0, 1])
def test_vmap_is_the_call_on_the_batched_parameters(in_dim, num_samples):
    concentration = torch.rand(4, 3, 5, **F64) + 0.2
    rate = torch.rand(5, **F64) + 0.5
    batched = torch.vmap(
        lambda c: _sample(c, rate, num_samples), in_dims=in_dim, randomness="different"
    )(concentration)
    direct = _sample(concentration.movedim(in_dim, 0), rate, num_samples)
    if num_samples is not None:
        direct = direct.movedim(1, 0)
    assert torch.equal(batched, direct)


def test_vmap_over_both_parameters():
    concentration = torch.rand(4, 5, **F64) + 0.2
    rate = torch.rand(4, 1, **F64) + 0.5
    batched = torch.vmap(_sample, randomness="different")(concentration, rate)
    assert torch.equal(batched, _sample(concentration, rate))


def test_per_example_gradients_are_the_batched_gradient():
    def loss(c, r):
        return torch.sin(_sample(c, r, 3)).sum()

    concentration = torch.rand(4, 5, **F64) + 0.2
    rate = torch.rand(4, 5, **F64) + 0.5
    per_example = torch.vmap(torch.func.grad(loss, argnums=(0, 1)), randomness="different")(
        concentration, rate
    )
    c, r = concentration.clone().requires_grad_(), rate.clone().requires_grad_()
    z = gradext.gamma_rsample(c, r, 3, generator=torch.Generator().manual_seed(3))
    # The batched call's sample layout is (K, B, ...): the same elements as vmap's (B, K, ...).
    whole = torch.autograd.grad(torch.sin(z).sum(), (c, r))
    for a, b in zip(per_example, whole):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_vmap_randomness_modes():
    c = torch.rand(2, 3, **F64) + 0.5
    with pytest.raises(RuntimeError, match=r"randomness error mode"):
        torch.vmap(lambda x: gradext.gamma_rsample(x))(c)
    with pytest.raises(NotImplementedError, match=r"vmap over gamma_rsample supports"):
        torch.vmap(lambda x: gradext.gamma_rsample(x), randomness="same")(c)

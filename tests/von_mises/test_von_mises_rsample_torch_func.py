"""von_mises_rsample under torch.func: vmap with randomness="different" is the call on the
batched parameters, bitwise (the batching rule is that call), and per-example gradients (vmap of
grad) are the batched call's gradient split per example, on the kernels and, for gradients, the
fallback. grad and jacrev of every registry op are contract tests
(tests/contracts/test_contract_torch_func.py)."""

from __future__ import annotations

import pytest
import torch

import gradext
from helpers.common import requires_extension

F64 = dict(dtype=torch.float64)


def _sample(loc, concentration, num_samples=None):
    return gradext.von_mises_rsample(
        loc, concentration, num_samples, generator=torch.Generator().manual_seed(3)
    )


@requires_extension
@pytest.mark.parametrize("num_samples", [None, 2])
@pytest.mark.parametrize("in_dim", [0, 1])
def test_vmap_is_the_call_on_the_batched_parameters(in_dim, num_samples):
    loc = torch.randn(4, 3, 5, **F64)
    concentration = torch.rand(5, **F64) + 0.5
    batched = torch.vmap(
        lambda m: _sample(m, concentration, num_samples), in_dims=in_dim, randomness="different"
    )(loc)
    direct = _sample(loc.movedim(in_dim, 0), concentration, num_samples)
    if num_samples is not None:
        direct = direct.movedim(1, 0)
    assert torch.equal(batched, direct)


@requires_extension
def test_per_example_gradients_are_the_batched_gradient():
    def loss(m, c):
        return torch.sin(_sample(m, c, 3)).sum()

    loc = torch.randn(4, 5, **F64)
    concentration = torch.rand(4, 5, **F64) + 0.2
    per_example = torch.vmap(torch.func.grad(loss, argnums=(0, 1)), randomness="different")(
        loc, concentration
    )
    m, c = loc.clone().requires_grad_(), concentration.clone().requires_grad_()
    x = gradext.von_mises_rsample(m, c, 3, generator=torch.Generator().manual_seed(3))
    # The batched call's sample layout is (K, B, ...): the same elements as vmap's (B, K, ...).
    whole = torch.autograd.grad(torch.sin(x).sum(), (m, c))
    for a, b in zip(per_example, whole):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_grad_of_grad_in_loc_through_torch_func(implementation):
    """torch.func.grad twice in loc (the double backward in loc of the kernels' Python formula,
    and of the fallback), against autograd's create_graph."""

    def first(m, c):
        return torch.func.grad(lambda mm: torch.sin(2 * _sample(mm, c)).sum())(m)

    loc = torch.randn(6, **F64)
    concentration = torch.rand(6, **F64) + 0.5
    hessian_diag = torch.func.grad(lambda m: first(m, concentration).sum())(loc)
    m = loc.clone().requires_grad_()
    x = _sample(m, concentration)
    (g,) = torch.autograd.grad(torch.sin(2 * x).sum(), m, create_graph=True)
    (expected,) = torch.autograd.grad(g.sum(), m)
    torch.testing.assert_close(hessian_diag, expected, rtol=1e-12, atol=1e-12)


def test_vmap_randomness_modes(implementation):
    m = torch.randn(2, 3, **F64)
    if implementation == "fallback":
        pytest.skip("the fallback draws with torch.rand, whose vmap modes are torch's own")
    with pytest.raises(RuntimeError, match=r"randomness error mode"):
        torch.vmap(lambda x: gradext.von_mises_rsample(x, 1.0))(m)
    with pytest.raises(NotImplementedError, match=r"vmap over von_mises_rsample supports"):
        torch.vmap(lambda x: gradext.von_mises_rsample(x, 1.0), randomness="same")(m)

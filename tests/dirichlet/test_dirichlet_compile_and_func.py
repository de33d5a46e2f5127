"""dirichlet_rsample and beta_rsample under torch.compile(fullgraph=True) (the same samples and
gradients as eager from the same seed) and torch.func (vmap with randomness="different" is the
call on the batched concentration, bitwise; per-example gradients are the batched gradient split
per example). grad and jacrev through both are contract tests (tests/contracts)."""

from __future__ import annotations

import pytest
import torch

import gradext
from helpers.common import requires_extension

pytestmark = requires_extension
F64 = dict(dtype=torch.float64)


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_compile_fullgraph_matches_eager(backend):
    torch._dynamo.reset()

    def loss_fn(log_c):
        x = gradext.dirichlet_rsample(log_c.exp(), 3)
        b = gradext.beta_rsample(log_c.exp()[:, 0], 2.0)
        return (x * torch.arange(4.0)).sum() + b.sum()

    compiled = torch.compile(loss_fn, fullgraph=True, backend=backend)
    log_c = torch.randn(8, 4).requires_grad_()
    torch.manual_seed(3)
    eager_loss = loss_fn(log_c)
    (eager_grad,) = torch.autograd.grad(eager_loss, log_c)
    torch.manual_seed(3)
    compiled_loss = compiled(log_c)
    (compiled_grad,) = torch.autograd.grad(compiled_loss, log_c)
    torch.testing.assert_close(compiled_loss, eager_loss, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(compiled_grad, eager_grad, rtol=1e-5, atol=1e-5)


def _sample(concentration, num_samples=None):
    return gradext.dirichlet_rsample(
        concentration, num_samples, generator=torch.Generator().manual_seed(3)
    )


@pytest.mark.parametrize("num_samples", [None, 2])
@pytest.mark.parametrize("in_dim", [0, 1])
def test_vmap_is_the_call_on_the_batched_concentration(in_dim, num_samples):
    concentration = torch.rand(4, 3, 5, **F64) + 0.2
    batched = torch.vmap(lambda c: _sample(c, num_samples), in_dims=in_dim, randomness="different")(
        concentration
    )
    direct = _sample(concentration.movedim(in_dim, 0), num_samples)
    if num_samples is not None:
        direct = direct.movedim(1, 0)
    assert torch.equal(batched, direct)


def test_per_example_gradients_are_the_batched_gradient():
    def loss(c):
        return torch.sin(_sample(c, 3)).sum()

    concentration = torch.rand(4, 5, **F64) + 0.2
    per_example = torch.vmap(torch.func.grad(loss), randomness="different")(concentration)
    c = concentration.clone().requires_grad_()
    x = gradext.dirichlet_rsample(c, 3, generator=torch.Generator().manual_seed(3))
    (whole,) = torch.autograd.grad(torch.sin(x).sum(), c)
    torch.testing.assert_close(per_example, whole, rtol=1e-12, atol=1e-12)

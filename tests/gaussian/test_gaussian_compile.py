"""gaussian_rsample under torch.compile(fullgraph=True); opcheck is a contract (tests/contracts)."""

from __future__ import annotations

import pytest
import torch

import gradext
from helpers.common import requires_extension

pytestmark = requires_extension


def _inputs(device, dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(8, 16, generator=g).to(device, dtype).requires_grad_(True)
    logvar = torch.randn(16, generator=g).to(device, dtype).requires_grad_(True)
    return mu, logvar


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_compile_fullgraph_matches_eager(device, backend):
    """Same seed, same noise: the compiled function's loss and gradients equal eager's.
    (Generator objects cannot be traced by dynamo, so compiled code uses the default
    generator, seeded with torch.manual_seed.)"""
    torch._dynamo.reset()

    def loss_fn(mu, logvar):
        z = gradext.gaussian_rsample(mu, logvar, 4)
        return (z.sin() * z).sum()

    compiled = torch.compile(loss_fn, fullgraph=True, backend=backend)
    mu, logvar = _inputs(device)
    torch.manual_seed(3)
    eager_loss = loss_fn(mu, logvar)
    eager_grads = torch.autograd.grad(eager_loss, (mu, logvar))
    torch.manual_seed(3)
    compiled_loss = compiled(mu, logvar)
    compiled_grads = torch.autograd.grad(compiled_loss, (mu, logvar))
    torch.testing.assert_close(compiled_loss, eager_loss, rtol=1e-5, atol=1e-5)
    for got, want in zip(compiled_grads, eager_grads):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_compile_inductor_default_generator(device):
    """The default generator inside an inductor graph: gradients match the formula on the
    sample the compiled function returned."""
    torch._dynamo.reset()

    @torch.compile(fullgraph=True)
    def sample_and_loss(mu, logvar):
        z = gradext.gaussian_rsample(mu, logvar, 2)
        return z, (z * z).sum()

    mu, logvar = _inputs(device)
    z, loss = sample_and_loss(mu, logvar)
    grad_mu, grad_logvar = torch.autograd.grad(loss, (mu, logvar))
    upstream = 2 * z.detach()
    torch.testing.assert_close(grad_mu, upstream.sum(0))
    torch.testing.assert_close(
        grad_logvar, (upstream * (z.detach() - mu.detach()) / 2).sum((0, 1)), rtol=1e-5, atol=1e-5
    )
    z2, _ = sample_and_loss(mu, logvar)
    assert not torch.equal(z, z2)  # fresh noise on every call


def test_a_sweep_over_num_samples_compiles_at_most_twice():
    """num_samples is a SymInt in the schemas of gaussian_rsample and categorical_sample, so a
    K sweep under torch.compile(fullgraph=True) traces K symbolically: one compilation with
    dynamic=True, two with torch's default automatic dynamic (the first call specializes)."""
    for dynamic, most in ((True, 1), (None, 2)):
        torch._dynamo.reset()
        compilations = []

        def backend(graph, example_inputs, compilations=compilations):
            compilations.append(graph)
            return graph.forward

        @torch.compile(fullgraph=True, dynamic=dynamic, backend=backend)
        def draw(mu, logvar, k):
            z = gradext.gaussian_rsample(mu, logvar, k)
            _, log_prob = gradext.categorical_sample(mu, k)
            return z.sum() + log_prob.sum()

        x = torch.randn(8, 5)
        for k in (1, 2, 3, 5, 8):
            draw(x, x, k)
        assert len(compilations) <= most, (dynamic, len(compilations))

"""gaussian_rsample under torch.compile(fullgraph=True) and torch.library.opcheck."""

from __future__ import annotations

import pytest
import torch

import gradext
from conftest import requires_extension

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
        grad_logvar, (upstream * (z.detach() - mu.detach()) / 2).sum((0, 1)),
        rtol=1e-5, atol=1e-5)
    z2, _ = sample_and_loss(mu, logvar)
    assert not torch.equal(z, z2)  # fresh noise on every call


@pytest.mark.parametrize("num_samples", [None, 3])
def test_opcheck_gaussian_rsample(device, num_samples):
    mu, logvar = _inputs(device)
    torch.library.opcheck(torch.ops.gradext.gaussian_rsample.default, (mu, logvar, num_samples))


def test_opcheck_seeded_and_backward(device):
    mu, logvar = _inputs(device)
    torch.library.opcheck(torch.ops.gradext._gaussian_rsample_seeded.default,
                          (mu, logvar, 3, 17, 4))
    z, state = torch.ops.gradext._gaussian_rsample_seeded(mu, logvar, 3, 17, 4)
    torch.library.opcheck(torch.ops.gradext._gaussian_rsample_replay.default,
                          (mu, logvar, 3, state))
    # Inputs that require grad: opcheck then checks the backward op's own autograd (its
    # derivative, for double backward) under AOTAutograd too.
    grad = torch.randn_like(z).requires_grad_()
    torch.library.opcheck(torch.ops.gradext._gaussian_rsample_backward.default,
                          (grad, logvar.detach().requires_grad_(), state, list(mu.shape), True,
                           True))


def test_random_op_is_tagged_nondeterministic_seeded():
    assert torch.Tag.nondeterministic_seeded in torch.ops.gradext.gaussian_rsample.default.tags

"""gumbel_softmax / gumbel_sigmoid under torch.compile(fullgraph=True); opcheck: tests/contracts."""

from __future__ import annotations

import pytest
import torch
from torch._dynamo.testing import CompileCounterWithBackend

import gradext
from helpers.common import requires_extension

pytestmark = requires_extension


@pytest.mark.parametrize("hard", [False, True])
def test_compile_fullgraph_matches_eager(device, hard):
    torch._dynamo.reset()

    def loss_fn(logits):
        y = gradext.gumbel_softmax(logits, tau=0.5, hard=hard, dim=0)
        b = gradext.gumbel_sigmoid(logits, tau=0.5, hard=hard)
        return (y * torch.arange(logits.shape[1], device=logits.device)).sum() + (b * b).sum()

    compiled = torch.compile(loss_fn, fullgraph=True)
    logits = torch.randn(6, 9, device=device, requires_grad=True)
    torch.manual_seed(0)
    eager = loss_fn(logits)
    (eager_grad,) = torch.autograd.grad(eager, logits)
    torch.manual_seed(0)
    got = compiled(logits)
    (got_grad,) = torch.autograd.grad(got, logits)
    torch.testing.assert_close(got, eager)
    torch.testing.assert_close(got_grad, eager_grad)


@pytest.mark.parametrize("name", ["gumbel_softmax", "gumbel_sigmoid"])
def test_annealed_tau_compiles_fullgraph_at_most_twice(device, name):
    """A tau schedule passed as a changing Python float: torch.compile(fullgraph=True) traces it
    as a graph input (the ops take tau as a tensor made from the traced float), so six values
    compile twice (torch's automatic dynamic: the first call specializes), as
    F.gumbel_softmax does, and every value's sample equals eager's on the same seed."""
    torch._dynamo.reset()
    fn = getattr(gradext, name)
    counter = CompileCounterWithBackend("aot_eager")
    compiled = torch.compile(
        lambda x, tau: fn(x, tau=tau, hard=True), fullgraph=True, backend=counter
    )
    logits = torch.randn(6, 9, device=device)
    for tau in (1.0, 0.9, 0.8, 0.7, 0.6, 0.5):
        torch.manual_seed(3)
        got = compiled(logits, tau)
        torch.manual_seed(3)
        want = fn(logits, tau=tau, hard=True)
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert counter.frame_count <= 2, counter.frame_count


def test_training_loop_with_a_tau_schedule_and_a_k_sweep_compiles_at_most_twice(device):
    """A training step of a discrete VAE and an IWAE-style Gaussian latent: tau annealed and the
    number of samples swept together, forward and backward, fullgraph."""
    torch._dynamo.reset()
    counter = CompileCounterWithBackend("aot_eager")

    @torch.compile(fullgraph=True, backend=counter)
    def loss_fn(logits, mu, logvar, tau, k):
        y = gradext.gumbel_softmax(logits, tau=tau, hard=True)
        z = gradext.gumbel_sigmoid(logits, tau=tau)
        g = gradext.gaussian_rsample(mu, logvar, k)
        _, log_prob = gradext.categorical_sample(logits, k)
        return (
            (y * torch.arange(9.0, device=y.device)).sum()
            + z.sum()
            + g.square().mean()
            + log_prob.mean()
        )

    logits = torch.randn(6, 9, device=device, requires_grad=True)
    mu = torch.randn(6, 4, device=device, requires_grad=True)
    logvar = torch.randn(6, 4, device=device, requires_grad=True)
    for step, (tau, k) in enumerate(zip((1.0, 0.9, 0.8, 0.7, 0.6, 0.5), (1, 2, 3, 5, 8, 4))):
        torch.manual_seed(step)
        loss = loss_fn(logits, mu, logvar, tau, k)
        grads = torch.autograd.grad(loss, (logits, mu, logvar))
        assert all(g.isfinite().all() for g in grads)
    assert counter.frame_count <= 2, counter.frame_count


def test_a_bad_tau_under_compile_is_still_refused(device):
    """The value check moves into the op under torch.compile: the same ValueError."""
    torch._dynamo.reset()
    compiled = torch.compile(lambda x, tau: gradext.gumbel_softmax(x, tau=tau), fullgraph=True)
    with pytest.raises(ValueError, match=r"tau must be a finite number > 0, got 0"):
        compiled(torch.randn(2, 3, device=device), 0.0)

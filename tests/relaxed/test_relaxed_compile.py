"""gumbel_softmax / gumbel_sigmoid under torch.compile(fullgraph=True); opcheck: tests/contracts."""

from __future__ import annotations

import pytest
import torch

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
def test_annealed_tau_compiles_fullgraph(device, name):
    """A tau schedule passed as a changing Python float: torch.compile(fullgraph=True) traces it
    (the argument checks leave a traced tau's value to the op) and every value's sample equals
    eager's on the same seed. The op's float argument is specialized per value (its schema
    cannot take a symbolic float), so this compiles once per tau value."""
    torch._dynamo.reset()
    fn = getattr(gradext, name)
    compiled = torch.compile(lambda x, tau: fn(x, tau=tau, hard=True), fullgraph=True)
    logits = torch.randn(6, 9, device=device)
    for tau in (1.0, 0.8, 0.6):
        torch.manual_seed(3)
        got = compiled(logits, tau)
        torch.manual_seed(3)
        want = fn(logits, tau=tau, hard=True)
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_a_bad_tau_under_compile_is_still_refused(device):
    """The value check moves into the op under torch.compile: the same ValueError."""
    torch._dynamo.reset()
    compiled = torch.compile(lambda x, tau: gradext.gumbel_softmax(x, tau=tau), fullgraph=True)
    with pytest.raises(ValueError, match=r"tau must be a finite number > 0, got 0"):
        compiled(torch.randn(2, 3, device=device), 0.0)

"""gumbel_softmax / gumbel_sigmoid under torch.compile(fullgraph=True) and opcheck."""

from __future__ import annotations

import pytest
import torch

import gradext
from conftest import requires_extension

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
@pytest.mark.parametrize("hard", [False, True])
def test_opcheck(device, name, hard):
    logits = torch.randn(5, 7, device=device, requires_grad=True)
    torch.library.opcheck(getattr(torch.ops.gradext, name).default, (logits, 0.5, hard))
    seeded = getattr(torch.ops.gradext, f"_{name}_seeded").default
    torch.library.opcheck(seeded, (logits, 0.5, hard, 3, 4))
    y, soft = seeded(logits.detach(), 0.5, True, 3, 4)
    backward = getattr(torch.ops.gradext, f"_{name}_backward").default
    # Inputs that require grad: opcheck checks the backward op's own autograd too.
    torch.library.opcheck(backward, (torch.randn_like(y).requires_grad_(),
                                     soft.requires_grad_(), 0.5))


def test_opcheck_philox_uniform(device):
    torch.library.opcheck(torch.ops.gradext._philox_uniform.default,
                          (torch.zeros(3, 5, device=device), 1, 2))

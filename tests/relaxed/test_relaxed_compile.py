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

"""Activation checkpointing (torch.utils.checkpoint) re-runs the forward during backward. The
random ops draw their seeds from torch's generators, whose state checkpoint saves and restores,
so the recomputed forward must draw exactly the noise of the first one: same values, same
gradients as without checkpointing, bitwise."""

from __future__ import annotations

import pytest
import torch
from torch.utils.checkpoint import checkpoint

import gradext


def _block(x, w):
    h = x @ w
    z = gradext.gaussian_rsample(h, 0.1 * h, num_samples=2)
    y = gradext.gumbel_softmax(z, 0.5, hard=True)
    b = gradext.gumbel_sigmoid(z, 0.7)
    _, log_prob = gradext.categorical_sample(z[0], num_samples=3)
    g = gradext.gamma_rsample(torch.nn.functional.softplus(z[1]) + 0.1, 2.0)
    d = gradext.dirichlet_rsample(torch.nn.functional.softplus(z[0]) + 0.1)
    v = gradext.von_mises_rsample(z[0], torch.nn.functional.softplus(z[1]) + 0.1)
    return (y * z).sum() + (b * z).sum() + log_prob.sum() + (g * d).sum() + torch.cos(v).sum()


@pytest.mark.parametrize("use_reentrant", [False, True])
def test_checkpoint_recomputes_the_same_noise(implementation, device, use_reentrant):
    w = torch.randn(8, 8, device=device).requires_grad_()
    x = torch.randn(4, 8, device=device).requires_grad_()

    torch.manual_seed(5)
    plain = _block(x, w)
    grads_plain = torch.autograd.grad(plain, (x, w))

    torch.manual_seed(5)
    checkpointed = checkpoint(_block, x, w, use_reentrant=use_reentrant)
    assert torch.equal(plain, checkpointed)
    # Draw other numbers in between, as the rest of a training step would: the recomputation
    # must not depend on the generator's state at backward time.
    torch.randn(1000, device=device)
    if use_reentrant:  # the reentrant variant supports only .backward()
        x.grad = w.grad = None
        checkpointed.backward()
        grads_checkpointed = (x.grad, w.grad)
    else:
        grads_checkpointed = torch.autograd.grad(checkpointed, (x, w))
    for a, b in zip(grads_plain, grads_checkpointed):
        assert torch.equal(a, b)


def test_checkpoint_detects_changed_noise():
    """The comparison above can fail: without restoring the generator, a second forward pass
    draws other noise and the results differ."""
    w = torch.randn(8, 8, requires_grad=True)
    x = torch.randn(4, 8, requires_grad=True)
    torch.manual_seed(5)
    first = _block(x, w)
    second = _block(x, w)
    assert not torch.equal(first, second)

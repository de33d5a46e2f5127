"""Gradients of gradients (create_graph=True) through gaussian_rsample and its replay op.
Checked against the reference on the same noise, finite differences and gradcheck of the
backward ops (helpers/higher_order.py says how)."""

from __future__ import annotations

import pytest
import torch

import gradext
from gradext import reference
from helpers.common import requires_extension
from helpers.gaussian import noise, run_with_state
from helpers.higher_order import (
    F64,
    assert_same,
    second_order,
    seeded,
    warnings_are_errors,  # noqa: F401  (autouse fixture)
)


@requires_extension
@pytest.mark.parametrize("order", [2, 3])
@pytest.mark.parametrize("num_samples", [None, 1, 4])
@pytest.mark.parametrize("logvar_shape", [(5, 3), (3,)])
def test_gaussian_matches_reference_on_same_noise(device, order, num_samples, logvar_shape):
    mu = torch.randn(5, 3, device=device, **F64).requires_grad_()
    logvar = (0.5 * torch.randn(logvar_shape, device=device, **F64)).requires_grad_()
    _, (seed, offset) = run_with_state(mu, logvar, num_samples, seeded(device=device))
    eps = noise((5, 3), seed, offset, device=device, num_samples=num_samples)

    def kernels(m, lv):
        return gradext.gaussian_rsample(m, lv, num_samples, generator=seeded(device=device))

    def on_same_noise(m, lv):
        return reference.gaussian_rsample_from_noise(m, lv, eps)

    assert_same(
        second_order(kernels, (mu, logvar), order),
        second_order(on_same_noise, (mu, logvar), order),
    )


@requires_extension
def test_gaussian_differentiable_backward_keeps_no_noise(device):
    """With create_graph=True the first backward is recorded for a second one, and still
    nothing of the samples' size is saved: the backward op keeps logvar, the (seed, offset) pair
    and its own grad_logvar; the second backward redraws the noise."""
    mu = torch.randn(16, 8, device=device).requires_grad_()
    logvar = torch.randn(16, 8, device=device).requires_grad_()
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        z = gradext.gaussian_rsample(mu, logvar, 32)
        grad_mu, grad_logvar = torch.autograd.grad(z.sum(), (mu, logvar), create_graph=True)
    assert saved and max(t.numel() for t in saved) == mu.numel()
    (second,) = torch.autograd.grad(grad_logvar.sum(), logvar)
    torch.testing.assert_close(second, grad_logvar.detach() / 2)


@requires_extension
def test_gaussian_gradgradcheck(device):
    mu = torch.randn(4, 3, device=device, **F64).requires_grad_()
    logvar = (0.5 * torch.randn(3, device=device, **F64)).requires_grad_()

    def sample(m, lv):
        return gradext.gaussian_rsample(m, lv, 2, generator=seeded(device=device))

    assert torch.autograd.gradgradcheck(sample, (mu, logvar))


@requires_extension
def test_gaussian_registered_op_matches_public_entry():
    """torch.compile and torch.func use the registered op; its double backward is the same."""
    mu = torch.randn(6, 2, **F64).requires_grad_()
    logvar = torch.randn(6, 2, **F64).requires_grad_()

    def public(m, lv):
        return gradext.gaussian_rsample(m, lv, 3, generator=seeded())

    def registered(m, lv):
        return torch.ops.gradext.gaussian_rsample(m, lv, 3, generator=seeded())[0]

    assert_same(second_order(public, (mu, logvar)), second_order(registered, (mu, logvar)))


@requires_extension
def test_gaussian_backward_op_gradcheck(device):
    logvar = torch.randn(4, 3, device=device, **F64).requires_grad_()
    grad = torch.randn(2, 4, 3, device=device, **F64).requires_grad_()
    _, rng_state = torch.ops.gradext._gaussian_rsample_seeded(logvar, logvar, 2, 11, 4)

    def backward(g, lv):
        return torch.ops.gradext._gaussian_rsample_backward(g, lv, rng_state, [4, 3], True, True)

    assert torch.autograd.gradcheck(backward, (grad, logvar))


@requires_extension
def test_replay_draws_the_forward_noise_again(device):
    mu = torch.randn(3, 5, device=device)
    logvar = torch.randn(5, device=device)
    z, rng_state = torch.ops.gradext.gaussian_rsample(
        mu, logvar, 2, generator=seeded(device=device)
    )
    again, state_again = torch.ops.gradext._gaussian_rsample_replay(mu, logvar, 2, rng_state)
    assert torch.equal(z, again) and torch.equal(rng_state, state_again)
    # With mu broadcast by a zero stride, as the double backward calls it.
    zero_mu = torch.zeros((), device=device).expand(3, 5)
    scaled, _ = torch.ops.gradext._gaussian_rsample_replay(zero_mu, logvar, 2, rng_state)
    dense_zeros = torch.zeros(3, 5, device=device)
    assert torch.equal(
        scaled, torch.ops.gradext._gaussian_rsample_replay(dense_zeros, logvar, 2, rng_state)[0]
    )
    torch.testing.assert_close(scaled, z - mu)


@requires_extension
def test_replay_checks_rng_state():
    x = torch.zeros(3)
    with pytest.raises(
        RuntimeError, match=r"_gaussian_rsample_replay: rng_state must be the int64"
    ):
        torch.ops.gradext._gaussian_rsample_replay(x, x, None, torch.zeros(2))
    with pytest.raises(RuntimeError, match=r"\(not contiguous\)"):
        torch.ops.gradext._gaussian_rsample_replay(
            x, x, None, torch.zeros(4, dtype=torch.long)[::2]
        )

"""torch.func.vmap of gaussian_rsample (randomness="different"): the op on the batched tensors,
per-example gradients of first and second order against the pure-PyTorch formula on the batched
call's noise, Jacobians in logvar through vmap(jacrev) and jacrev(vmap), the replay op vmapped
over one forward's noise, and vmap's randomness modes."""

from __future__ import annotations

import pytest
import torch

import gradext
from helpers.common import requires_extension

F64 = dict(dtype=torch.float64)
TIGHT = dict(rtol=1e-10, atol=1e-10)


def _seeded():
    return torch.Generator().manual_seed(3)


# Cases: (mu per example, logvar per example, in_dims); batched tensors carry the batch of 3 at
# their in_dim. The logvar of [5] against mu of [4, 5] checks that broadcasting stays per
# example, and an unbatched (shared) logvar or mu that per-example gradients stay per example.
BATCH = 3
GAUSSIAN_VMAP_CASES = {
    "both batched": ((4, 5), (4, 5), (0, 0)),
    "mu batched at dim 1, logvar shared": ((4, 5), (5,), (1, None)),
    "mu shared, logvar of lower rank batched": ((4, 5), (5,), (None, 0)),
}


def _gaussian_vmap_inputs(case):
    mu_shape, logvar_shape, in_dims = GAUSSIAN_VMAP_CASES[case]

    def make(shape, in_dim):
        x = torch.randn(BATCH, *shape, **F64)
        return x if in_dim is None else x.movedim(0, in_dim)

    mu = make(mu_shape, in_dims[0]) if in_dims[0] is not None else torch.randn(mu_shape, **F64)
    logvar = (
        make(logvar_shape, in_dims[1])
        if in_dims[1] is not None
        else torch.randn(logvar_shape, **F64)
    )
    return mu, logvar, in_dims


def _per_example_leaves(mu, logvar, in_dims):
    """mu and logvar as [BATCH, ...] leaves, each example's own copy (a shared input is
    repeated), shaped to broadcast per example: what per-example gradients differentiate."""
    rank = max(mu.dim() - (in_dims[0] is not None), logvar.dim() - (in_dims[1] is not None))

    def leaf(x, in_dim):
        x = x.movedim(in_dim, 0) if in_dim is not None else x.expand(BATCH, *x.shape)
        return x.reshape(BATCH, *([1] * (rank + 1 - x.dim())), *x.shape[1:]).clone()

    return leaf(mu, in_dims[0]).requires_grad_(), leaf(logvar, in_dims[1]).requires_grad_()


def _gaussian_sampler(num_samples):
    return lambda m, lv: gradext.gaussian_rsample(m, lv, num_samples, generator=_seeded())


def _batched_noise(mu, logvar, num_samples):
    """The standard-normal noise the batched call draws (mu = 0, logvar = 0, same seed)."""
    shape = torch.broadcast_shapes(mu.shape, logvar.shape)
    zeros = torch.zeros(shape, **F64)
    return gradext.gaussian_rsample(zeros, zeros, num_samples, generator=_seeded())


def _per_example(z, num_samples):
    # The batched call's output with the batch first (vmap's out_dims=0).
    return z if num_samples is None else z.movedim(1, 0)


@requires_extension
@pytest.mark.parametrize("num_samples", [None, 1, 3])
@pytest.mark.parametrize("case", list(GAUSSIAN_VMAP_CASES))
def test_vmap_of_gaussian_rsample_is_the_call_on_the_batched_tensors(case, num_samples):
    """randomness="different": bitwise the call on the batched tensors, example b's samples at
    [:, b] of the batched (K, B, ...) output."""
    mu, logvar, in_dims = _gaussian_vmap_inputs(case)
    sample = _gaussian_sampler(num_samples)
    by_vmap = torch.vmap(sample, in_dims=in_dims, randomness="different")(mu, logvar)
    m, lv = (t.detach() for t in _per_example_leaves(mu, logvar, in_dims))
    torch.testing.assert_close(by_vmap, _per_example(sample(m, lv), num_samples), rtol=0, atol=0)


@requires_extension
@pytest.mark.parametrize("num_samples", [None, 1, 3])
@pytest.mark.parametrize("case", list(GAUSSIAN_VMAP_CASES))
def test_per_example_gradients_of_gaussian_rsample(case, num_samples):
    """vmap(grad): each example's gradients, a shared mu or logvar included, equal autograd
    through the pure-PyTorch formula on the batched call's noise."""
    mu, logvar, in_dims = _gaussian_vmap_inputs(case)
    sample = _gaussian_sampler(num_samples)

    def loss(m, lv):
        return torch.sin(sample(m, lv)).sum()

    by_vmap = torch.vmap(
        torch.func.grad(loss, argnums=(0, 1)), in_dims=in_dims, randomness="different"
    )(mu, logvar)
    m, lv = _per_example_leaves(mu, logvar, in_dims)
    eps = _batched_noise(m, lv, num_samples)
    reference_loss = torch.sin(gradext.reference.gaussian_rsample_from_noise(m, lv, eps)).sum()
    expected = torch.autograd.grad(reference_loss, (m, lv))
    for got, want in zip(by_vmap, expected):
        torch.testing.assert_close(got, want.reshape(got.shape), **TIGHT)


@requires_extension
@pytest.mark.parametrize("case", list(GAUSSIAN_VMAP_CASES))
def test_per_example_second_derivatives_of_gaussian_rsample(case):
    """vmap of a gradient of a gradient (the backward's own derivative replays the batched
    forward's noise) equals autograd's double backward through the pure-PyTorch formula."""
    mu, logvar, in_dims = _gaussian_vmap_inputs(case)
    sample = _gaussian_sampler(2)

    def loss(m, lv):
        return torch.sin(sample(m, lv)).sum()

    def grad_norm(m, lv):
        g_mu, g_lv = torch.func.grad(loss, argnums=(0, 1))(m, lv)
        return (g_mu**2).sum() + (g_lv**2).sum()

    by_vmap = torch.vmap(
        torch.func.grad(grad_norm, argnums=(0, 1)), in_dims=in_dims, randomness="different"
    )(mu, logvar)
    m, lv = _per_example_leaves(mu, logvar, in_dims)
    eps = _batched_noise(m, lv, 2)
    reference_loss = torch.sin(gradext.reference.gaussian_rsample_from_noise(m, lv, eps)).sum()
    first = torch.autograd.grad(reference_loss, (m, lv), create_graph=True)
    expected = torch.autograd.grad(sum((g**2).sum() for g in first), (m, lv))
    for got, want in zip(by_vmap, expected):
        torch.testing.assert_close(got, want.reshape(got.shape), **TIGHT)


@requires_extension
def test_jacobians_in_logvar_through_vmapped_gaussian_rsample():
    """vmap(jacrev) and jacrev(vmap): d z / d logvar = exp(logvar / 2) * eps / 2, diagonal,
    with eps the batched call's noise."""
    logvar = torch.randn(BATCH, 4, **F64)
    mu = torch.randn(4, **F64)
    eps = _batched_noise(mu, logvar, None)
    diagonal = torch.exp(logvar / 2) * eps / 2

    def sample(lv):
        return gradext.gaussian_rsample(mu, lv, generator=_seeded())

    per_example = torch.vmap(torch.func.jacrev(sample), randomness="different")(logvar)
    torch.testing.assert_close(per_example, torch.diag_embed(diagonal), **TIGHT)
    whole = torch.func.jacrev(torch.vmap(sample, randomness="different"))(logvar)
    expected = torch.diag_embed(diagonal.reshape(-1)).reshape(BATCH, 4, BATCH, 4)
    torch.testing.assert_close(whole, expected, **TIGHT)


@requires_extension
@pytest.mark.parametrize("num_samples", [None, 2])
def test_vmap_of_the_replay_op_over_one_forwards_noise(num_samples):
    """The replay op (the Gaussian backward's derivative redraws noise with it) vmapped over
    batched mu and logvar with an unbatched rng_state: every example replays that one
    forward's noise, as a loop of unbatched replays does."""
    mu = torch.randn(BATCH, 4, 5, **F64)
    logvar = torch.randn(5, **F64)
    _, rng_state = torch.ops.gradext.gaussian_rsample(mu[0], logvar, num_samples)
    replay = gradext.gaussian._gaussian_rsample_replay
    by_vmap, _ = torch.vmap(replay, in_dims=(0, None, None, None))(
        mu, logvar, num_samples, rng_state
    )
    by_loop = torch.stack([replay(m, logvar, num_samples, rng_state)[0] for m in mu])
    torch.testing.assert_close(by_vmap, by_loop, rtol=0, atol=0)


@requires_extension
def test_vmap_randomness_modes_of_gaussian_rsample():
    mu = torch.randn(2, 3, **F64)
    sample = _gaussian_sampler(None)
    with pytest.raises(
        RuntimeError,
        match=r"vmap: called random operation while in randomness "
        r"error mode",
    ):
        torch.vmap(sample)(mu, mu)
    with pytest.raises(
        NotImplementedError,
        match=r"gradext: vmap over gaussian_rsample supports "
        r"randomness='different' only",
    ):
        torch.vmap(sample, randomness="same")(mu, mu)

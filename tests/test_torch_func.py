"""torch.func transforms through the ops: grad (nested too), jacrev, vmap of the estimators
and (randomness="different") of the samplers, against plain autograd, Python loops, the batched
call and the pure-PyTorch formulas on the batched call's noise."""

from __future__ import annotations

import pytest
import torch

import gradext
from conftest import requires_extension
from op_cases import OPS, function_through

F64 = dict(dtype=torch.float64)
TIGHT = dict(rtol=1e-10, atol=1e-10)


def _jacobian_by_autograd(fn, x):
    leaf = x.clone().requires_grad_()
    out = fn(leaf)
    rows = [torch.autograd.grad(out.reshape(-1)[i], leaf, retain_graph=True)[0]
            for i in range(out.numel())]
    return torch.stack(rows).reshape(*out.shape, *x.shape)


@pytest.mark.parametrize("name", OPS)
def test_grad_equals_autograd(implementation, name):
    """torch.func.grad through every op, kernels and fallback (the public entry builds a
    transform-ready Function; the dispatcher op's generated one cannot serve torch.func:
    pytorch/pytorch#170834)."""
    op = function_through(name)

    def loss(x):
        return torch.sin(op(x)).sum()

    x = torch.randn(3, 4, **F64)
    by_func = torch.func.grad(loss)(x)
    leaf = x.clone().requires_grad_()
    (by_autograd,) = torch.autograd.grad(loss(leaf), leaf)
    torch.testing.assert_close(by_func, by_autograd, **TIGHT)


@requires_extension
def test_nested_grad_is_a_second_derivative():
    """torch.func.grad of torch.func.grad equals autograd's double backward."""
    mu = torch.randn(3, **F64)
    logvar = torch.randn(3, **F64)

    def loss(m, lv):
        z = gradext.gaussian_rsample(m, lv, 2, generator=torch.Generator().manual_seed(7))
        return (torch.sin(z)).sum()

    def grad_norm(m, lv):
        g_mu, g_lv = torch.func.grad(loss, argnums=(0, 1))(m, lv)
        return (g_mu**2).sum() + (g_lv**2).sum()

    by_func = torch.func.grad(grad_norm, argnums=(0, 1))(mu, logvar)
    m, lv = mu.clone().requires_grad_(), logvar.clone().requires_grad_()
    first = torch.autograd.grad(loss(m, lv), (m, lv), create_graph=True)
    by_autograd = torch.autograd.grad(sum((g**2).sum() for g in first), (m, lv))
    for a, e in zip(by_func, by_autograd):
        torch.testing.assert_close(a, e, **TIGHT)


@pytest.mark.parametrize("name", OPS)
def test_jacrev_equals_autograd_jacobian(implementation, name):
    """jacrev vmaps the backward over the output's basis vectors: every fused backward op has
    a batching rule (the Gaussian's reduces each against the one forward's noise)."""
    op = function_through(name)
    x = torch.randn(3, 4, **F64)
    torch.testing.assert_close(torch.func.jacrev(op)(x), _jacobian_by_autograd(op, x), **TIGHT)


@pytest.mark.parametrize("name", ["score_function_loo", "vimco"])
@pytest.mark.parametrize("in_dims", [(2, 2), (0, 2), (None, 1)])
@pytest.mark.parametrize("dim", [0, -1])
def test_vmap_of_an_estimator_equals_a_loop(implementation, name, in_dims, dim):
    op = getattr(gradext, name)
    shapes = {0: (4, 5, 6), 1: (5, 4, 6), 2: (5, 6, 4), None: (5, 6)}
    values = torch.randn(shapes[in_dims[0]], **F64)
    log_prob = torch.randn(shapes[in_dims[1]], **F64)

    def item(t, d, i):
        return t if d is None else t.select(d, i)

    batched = torch.vmap(lambda a, b: op(a, b, dim), in_dims=in_dims)(values, log_prob)
    loop = torch.stack([op(item(values, in_dims[0], i), item(log_prob, in_dims[1], i), dim)
                        for i in range(4)])
    torch.testing.assert_close(batched, loop, **TIGHT)


@pytest.mark.parametrize("name", ["score_function_loo", "vimco"])
def test_per_sample_gradients_equal_a_loop(implementation, name):
    """vmap(grad): one gradient per vmapped item, through the backward ops' batching rules."""
    op = getattr(gradext, name)
    values = torch.randn(3, 5, 6, **F64)   # vmapped over dim 0
    log_prob = torch.randn(5, 6, **F64)    # shared

    def loss(a, b):
        return torch.sin(op(a * b, b, 0)).sum()

    batched = torch.vmap(torch.func.grad(loss, argnums=(0, 1)), in_dims=(0, None))(values, log_prob)
    for i in range(3):
        a = values[i].clone().requires_grad_()
        b = log_prob.clone().requires_grad_()
        expected = torch.autograd.grad(loss(a, b), (a, b))
        for got, want in zip(batched, expected):
            torch.testing.assert_close(got[i], want, **TIGHT)


def _seeded():
    return torch.Generator().manual_seed(3)


SAMPLERS = {
    "gumbel_softmax": lambda t: gradext.gumbel_softmax(t, tau=0.5, generator=_seeded()),
    "gumbel_softmax hard":
        lambda t: gradext.gumbel_softmax(t, tau=0.5, hard=True, generator=_seeded()),
    "gumbel_sigmoid": lambda t: gradext.gumbel_sigmoid(t, tau=0.5, generator=_seeded()),
    "categorical_sample log_prob":
        lambda t: gradext.categorical_sample(t, 2, generator=_seeded())[1].movedim(0, -1),
}


@requires_extension
@pytest.mark.parametrize("name", list(SAMPLERS))
@pytest.mark.parametrize("in_dim", [0, 1])
def test_vmap_of_a_gumbel_sampler_is_the_call_on_the_batched_tensor(name, in_dim):
    """randomness="different": what calling the op on the batched tensor gives, bitwise (the
    batching rule is exactly that call)."""
    sample = SAMPLERS[name]
    x = torch.randn(4, 3, 5, **F64)
    batched = torch.vmap(sample, in_dims=in_dim, randomness="different")(x)
    torch.testing.assert_close(batched, sample(x.movedim(in_dim, 0)), rtol=0, atol=0)


@requires_extension
@pytest.mark.parametrize("name", list(SAMPLERS))
def test_per_example_gradients_of_a_gumbel_sampler(name):
    """vmap(grad) through a sampler: the gradient of the batched call, split per example."""
    sample = SAMPLERS[name]

    def loss(t):
        return torch.sin(sample(t)).sum()

    x = torch.randn(4, 3, 5, **F64)
    per_example = torch.vmap(torch.func.grad(loss), randomness="different")(x)
    leaf = x.clone().requires_grad_()
    (whole,) = torch.autograd.grad(loss(leaf), leaf)
    torch.testing.assert_close(per_example, whole, **TIGHT)


@requires_extension
def test_vmap_randomness_modes_of_a_sampler():
    x = torch.randn(2, 3, 4, **F64)
    sample = SAMPLERS["gumbel_softmax"]
    with pytest.raises(RuntimeError, match=r"vmap: called random operation while in randomness "
                                           r"error mode"):
        torch.vmap(sample)(x)
    with pytest.raises(NotImplementedError, match=r"gradext: vmap over gumbel_softmax supports "
                                                  r"randomness='different' only"):
        torch.vmap(sample, randomness="same")(x)


# --- gaussian_rsample under vmap: the op on the batched tensors (randomness="different") ---
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
    logvar = (make(logvar_shape, in_dims[1]) if in_dims[1] is not None
              else torch.randn(logvar_shape, **F64))
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

    by_vmap = torch.vmap(torch.func.grad(loss, argnums=(0, 1)), in_dims=in_dims,
                         randomness="different")(mu, logvar)
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

    by_vmap = torch.vmap(torch.func.grad(grad_norm, argnums=(0, 1)), in_dims=in_dims,
                         randomness="different")(mu, logvar)
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
    replay = gradext._ops.gaussian._gaussian_rsample_replay
    by_vmap, _ = torch.vmap(replay, in_dims=(0, None, None, None))(mu, logvar, num_samples,
                                                                    rng_state)
    by_loop = torch.stack([replay(m, logvar, num_samples, rng_state)[0] for m in mu])
    torch.testing.assert_close(by_vmap, by_loop, rtol=0, atol=0)


@requires_extension
def test_vmap_randomness_modes_of_gaussian_rsample():
    mu = torch.randn(2, 3, **F64)
    sample = _gaussian_sampler(None)
    with pytest.raises(RuntimeError, match=r"vmap: called random operation while in randomness "
                                           r"error mode"):
        torch.vmap(sample)(mu, mu)
    with pytest.raises(NotImplementedError, match=r"gradext: vmap over gaussian_rsample supports "
                                                  r"randomness='different' only"):
        torch.vmap(sample, randomness="same")(mu, mu)

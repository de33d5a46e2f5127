"""torch.func transforms through every op of the registry: grad (nested too) and jacrev against
plain autograd, on the kernels and the fallback; and vmap of every sampler with
randomness="different" against the call on the batched tensor (the randomness contract under
vmap)."""

from __future__ import annotations

import pytest
import torch

import gradext
from gradext.op_registry import EXAMPLE_SHAPE, OPS
from helpers.common import requires_extension

F64 = dict(dtype=torch.float64)
TIGHT = dict(rtol=1e-10, atol=1e-10)


def _jacobian_by_autograd(fn, x):
    leaf = x.clone().requires_grad_()
    out = fn(leaf)
    rows = [
        torch.autograd.grad(out.reshape(-1)[i], leaf, retain_graph=True)[0]
        for i in range(out.numel())
    ]
    return torch.stack(rows).reshape(*out.shape, *x.shape)


@pytest.mark.parametrize("case", OPS, ids=lambda case: case.name)
def test_grad_equals_autograd(implementation, case):
    """torch.func.grad through every op, kernels and fallback (the public entry builds a
    transform-ready Function; the dispatcher op's generated one cannot serve torch.func:
    pytorch/pytorch#170834)."""
    op = case.example

    def loss(x):
        return torch.sin(op(x)).sum()

    x = torch.randn(*EXAMPLE_SHAPE, **F64)
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


@pytest.mark.parametrize("case", OPS, ids=lambda case: case.name)
def test_jacrev_equals_autograd_jacobian(implementation, case):
    """jacrev vmaps the backward over the output's basis vectors: every fused backward op has
    a batching rule (the Gaussian's reduces each against the one forward's noise)."""
    op = case.example
    x = torch.randn(*EXAMPLE_SHAPE, **F64)
    torch.testing.assert_close(torch.func.jacrev(op)(x), _jacobian_by_autograd(op, x), **TIGHT)


def _seeded():
    return torch.Generator().manual_seed(3)


SAMPLERS = {
    "gumbel_softmax": lambda t: gradext.gumbel_softmax(t, tau=0.5, generator=_seeded()),
    "gumbel_softmax hard": lambda t: gradext.gumbel_softmax(
        t, tau=0.5, hard=True, generator=_seeded()
    ),
    "gumbel_sigmoid": lambda t: gradext.gumbel_sigmoid(t, tau=0.5, generator=_seeded()),
    "categorical_sample log_prob": lambda t: gradext.categorical_sample(t, 2, generator=_seeded())[
        1
    ].movedim(0, -1),
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
    with pytest.raises(
        RuntimeError,
        match=r"vmap: called random operation while in randomness "
        r"error mode",
    ):
        torch.vmap(sample)(x)
    with pytest.raises(
        NotImplementedError,
        match=r"gradext: vmap over gumbel_softmax supports "
        r"randomness='different' only",
    ):
        torch.vmap(sample, randomness="same")(x)

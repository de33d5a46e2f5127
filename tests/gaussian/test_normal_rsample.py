"""normal_rsample, the Gaussian family's scale parametrization z = loc + scale * eps: the noise is
gaussian_rsample's, values and gradients match the reference on that noise (float64 autograd),
the gradient is exact at scale = 0, double backward against the reference and gradgradcheck of
the backward op, errors name loc and scale, torch.compile and vmap."""

from __future__ import annotations

import pytest
import torch

import gradext
from gradext import reference
from helpers.common import ALL_DTYPES, requires_extension, tolerance
from helpers.higher_order import (
    F64,
    TIGHT,
    second_order,
    seeded,
    warnings_are_errors,  # noqa: F401  (autouse fixture)
)

pytestmark = requires_extension


def _leaf(t):
    return t.detach().clone().requires_grad_(True)


def _run_with_state(loc, scale, num_samples=None, generator=None):
    z, state = torch.ops.gradext.normal_rsample(loc, scale, num_samples, generator=generator)
    return z, tuple(int(v) for v in state.cpu())


def _noise(shape, seed, offset, device, dtype=torch.float64, num_samples=None):
    """The kernels' standard normals for (seed, offset), through gaussian_rsample's seeded op:
    the two parametrizations share the noise."""
    zeros = torch.zeros(shape, dtype=dtype, device=device)
    eps, _ = torch.ops.gradext._gaussian_rsample_seeded(zeros, zeros, num_samples, seed, offset)
    return eps


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("shape, num_samples", [((64, 32), 3), ((7, 5), None), ((33,), 2)])
def test_noise_is_gaussian_rsamples(device, dtype, shape, num_samples):
    """normal_rsample(0, 1) and gaussian_rsample(0, 0) draw bitwise the same eps for one
    (seed, offset), in every dtype and both kernel shapes (numel % 4 == 0 or not)."""
    zeros = torch.zeros(shape, dtype=dtype, device=device)
    ones = torch.ones(shape, dtype=dtype, device=device)
    ours, _ = torch.ops.gradext._normal_rsample_seeded(zeros, ones, num_samples, 99, 12)
    theirs, _ = torch.ops.gradext._gaussian_rsample_seeded(zeros, zeros, num_samples, 99, 12)
    assert torch.equal(ours, theirs)


@pytest.mark.parametrize("num_samples", [None, 1, 5])
@pytest.mark.parametrize(
    "loc_shape, scale_shape",
    [((32, 8), (32, 8)), ((6, 8), (8,)), ((5, 1), (1, 7)), ((3, 4, 5), ()), ((7,), (7,))],
)
def test_values_and_gradients_match_reference_on_same_noise(
    device, num_samples, loc_shape, scale_shape
):
    g = torch.Generator().manual_seed(0)
    loc = _leaf(torch.randn(loc_shape, generator=g, **F64).to(device))
    scale = _leaf(torch.rand(scale_shape, generator=g, **F64).to(device) + 0.1)
    z, (seed, offset) = _run_with_state(loc, scale, num_samples)
    shape = torch.broadcast_shapes(loc.shape, scale.shape)
    eps = _noise(shape, seed, offset, device, num_samples=num_samples)
    loc_r, scale_r = _leaf(loc), _leaf(scale)
    z_ref = reference.normal_rsample_from_noise(loc_r, scale_r, eps)
    torch.testing.assert_close(z, z_ref, **TIGHT)
    upstream = torch.randn(z.shape, generator=g, **F64).to(device)
    grads = torch.autograd.grad(z, (loc, scale), upstream)
    grads_ref = torch.autograd.grad(z_ref, (loc_r, scale_r), upstream)
    for got, want in zip(grads, grads_ref):
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, **TIGHT)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_gradient_dtypes(device, dtype):
    loc = _leaf(torch.randn(16, 12, device=device).to(dtype))
    scale = _leaf((torch.rand(16, 12, device=device) + 0.1).to(dtype))
    z, (seed, offset) = _run_with_state(loc, scale, 3)
    upstream = torch.randn_like(z)
    grad_loc, grad_scale = torch.autograd.grad(z, (loc, scale), upstream)
    assert grad_loc.dtype == dtype and grad_scale.dtype == dtype
    math_dtype = torch.float64 if dtype == torch.float64 else torch.float32
    eps = _noise((16, 12), seed, offset, device, math_dtype, num_samples=3).double()
    up = upstream.double()
    torch.testing.assert_close(grad_loc.double(), up.sum(0), **tolerance(dtype))
    torch.testing.assert_close(grad_scale.double(), (up * eps).sum(0), **tolerance(dtype))


def test_same_sample_as_gaussian_rsample_with_the_matching_logvar(device):
    """normal_rsample(m, exp(lv / 2)) is gaussian_rsample(m, lv) to rounding (same noise), and
    their gradients agree by the chain rule: grad_logvar = grad_scale * scale / 2."""
    loc = torch.randn(9, 6, device=device, **F64, requires_grad=True)
    logvar = torch.randn(6, device=device, **F64, requires_grad=True)
    scale = torch.exp(0.5 * logvar)
    a = gradext.normal_rsample(loc, scale, 4, generator=seeded(3, device))
    b = gradext.gaussian_rsample(loc, logvar, 4, generator=seeded(3, device))
    torch.testing.assert_close(a, b, **TIGHT)
    upstream = torch.randn_like(a)
    grads_a = torch.autograd.grad(a, (loc, logvar), upstream)  # through scale = exp(lv / 2)
    grads_b = torch.autograd.grad(b, (loc, logvar), upstream)
    for x, y in zip(grads_a, grads_b):
        torch.testing.assert_close(x, y, **TIGHT)


def test_exact_at_scale_zero(device):
    """scale = 0: z is exactly loc and grad_scale = sum grad * eps, finite and the reference's;
    the log-variance form of the same law (logvar = -inf) has no finite parameter."""
    loc = torch.randn(4, 5, device=device, **F64, requires_grad=True)
    scale = torch.zeros(5, device=device, **F64, requires_grad=True)
    z, (seed, offset) = _run_with_state(loc, scale, 3)
    assert torch.equal(z, loc.detach().expand(3, 4, 5))
    upstream = torch.randn_like(z)
    (grad_scale,) = torch.autograd.grad(z, scale, upstream)
    eps = _noise((4, 5), seed, offset, device, num_samples=3)
    torch.testing.assert_close(grad_scale, (upstream * eps).sum((0, 1)), **TIGHT)
    assert grad_scale.isfinite().all() and (grad_scale != 0).all()


@pytest.mark.parametrize("order", [2, 3])
@pytest.mark.parametrize("num_samples", [None, 4])
@pytest.mark.parametrize("scale_shape", [(5, 3), (3,)])
def test_higher_orders_match_reference_on_same_noise(device, order, num_samples, scale_shape):
    loc = torch.randn(5, 3, device=device, **F64).requires_grad_()
    scale = (torch.rand(scale_shape, device=device, **F64) + 0.2).requires_grad_()
    _, (seed, offset) = _run_with_state(loc, scale, num_samples, seeded(device=device))
    eps = _noise((5, 3), seed, offset, device, num_samples=num_samples)
    ours = second_order(
        lambda m, s: gradext.normal_rsample(m, s, num_samples, generator=seeded(device=device)),
        (loc, scale),
        order,
    )
    theirs = second_order(
        lambda m, s: reference.normal_rsample_from_noise(m, s, eps), (loc, scale), order
    )
    for a, b in zip(ours, theirs):
        if b is None:  # the derivative is zero: ours may be None or zeros
            assert a is None or torch.count_nonzero(a) == 0
        else:
            torch.testing.assert_close(a, b, **TIGHT)


def test_backward_op_gradgradcheck(device):
    """The fused backward's own derivatives (in grad and in scale) by finite differences."""
    loc = torch.randn(3, 4, device=device, **F64)
    scale = (torch.rand(4, device=device, **F64) + 0.3).requires_grad_()
    z, state = torch.ops.gradext._normal_rsample_seeded(loc, scale.detach(), 2, 5, 0)
    grad = torch.randn_like(z).requires_grad_()

    def backward(grad, scale):
        return torch.ops.gradext._normal_rsample_backward(grad, scale, state, [3, 4], True, True)

    assert torch.autograd.gradcheck(backward, (grad, scale))
    assert torch.autograd.gradgradcheck(backward, (grad, scale))


@pytest.mark.parametrize(
    "call, error, message",
    [
        (
            lambda: gradext.normal_rsample(torch.zeros(3), torch.ones(3, dtype=torch.int64)),
            TypeError,
            "normal_rsample: scale must be a floating-point tensor",
        ),
        (
            lambda: gradext.normal_rsample(torch.zeros(3, dtype=torch.int32), torch.ones(3)),
            TypeError,
            "normal_rsample: loc must be a floating-point tensor",
        ),
        (
            lambda: gradext.normal_rsample(torch.zeros(3), torch.ones(4)),
            ValueError,
            "normal_rsample: .*loc.*scale",
        ),
        (
            lambda: gradext.normal_rsample(torch.zeros(3), torch.ones(3), 0),
            ValueError,
            "normal_rsample: num_samples",
        ),
        (
            lambda: torch.ops.gradext.normal_rsample(torch.zeros(3), torch.ones(4)),
            ValueError,
            "normal_rsample: .*loc.*scale",
        ),
        (
            lambda: torch.ops.gradext._normal_rsample_backward(
                torch.zeros(2, 3), torch.ones(3), torch.zeros(3, dtype=torch.int64), [3], True, True
            ),
            RuntimeError,
            "_normal_rsample_backward: rng_state",
        ),
    ],
)
def test_errors_name_the_arguments(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_compiles_fullgraph_with_the_eager_values():
    def step(loc, scale):
        return gradext.normal_rsample(loc, scale, 3).square().sum()

    loc = torch.randn(8, 4, **F64, requires_grad=True)
    scale = (torch.rand(4, **F64) + 0.5).requires_grad_()
    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    torch.manual_seed(5)
    eager = step(loc, scale)
    eager_grads = torch.autograd.grad(eager, (loc, scale))
    torch.manual_seed(5)
    value = compiled(loc, scale)
    grads = torch.autograd.grad(value, (loc, scale))
    assert torch.equal(value, eager)
    for a, b in zip(grads, eager_grads):
        assert torch.equal(a, b)


def test_vmap_per_example_gradients_match_a_loop():
    """vmap(grad) with randomness="different": each example's gradient is its own, and equals
    the reference formula on the noise the batched call drew."""
    from torch.func import grad, vmap

    loc = torch.randn(6, 4, **F64)
    scale = torch.rand(6, 4, **F64) + 0.5

    def loss(m, s):
        return gradext.normal_rsample(m, s, 2).sin().sum()

    torch.manual_seed(9)
    g_loc, g_scale = vmap(grad(loss, argnums=(0, 1)), randomness="different")(loc, scale)
    torch.manual_seed(9)
    z_all, (seed, offset) = _run_with_state(loc, scale, 2)  # the batched call's noise
    eps = _noise((6, 4), seed, offset, "cpu", num_samples=2)
    cos = torch.cos(loc + scale * eps)
    torch.testing.assert_close(g_loc, cos.sum(0), **TIGHT)
    torch.testing.assert_close(g_scale, (cos * eps).sum(0), **TIGHT)

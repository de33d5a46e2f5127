"""gaussian_rsample backward: against the reference on the same noise, gradcheck in float64,
broadcast reductions, partial requires_grad, and what autograd keeps alive."""

from __future__ import annotations

import pytest
import torch

import gradext
from gradext import reference
from helpers.common import ALL_DTYPES, requires_extension, tolerance
from helpers.gaussian import noise, run_with_state


def _leaf(t):
    return t.detach().clone().requires_grad_(True)


@requires_extension
@pytest.mark.parametrize("num_samples", [None, 1, 5])
@pytest.mark.parametrize(
    "shape_mu, shape_logvar",
    [((32, 8), (32, 8)), ((6, 8), (8,)), ((5, 1), (1, 7)), ((3, 4, 5), ()), ((7,), (7,))],
)
def test_gradients_match_reference_on_same_noise(device, num_samples, shape_mu, shape_logvar):
    g = torch.Generator().manual_seed(0)
    mu = _leaf(torch.randn(shape_mu, generator=g, dtype=torch.float64).to(device))
    logvar = _leaf(torch.randn(shape_logvar, generator=g, dtype=torch.float64).to(device))
    z, (seed, offset) = run_with_state(mu, logvar, num_samples)
    upstream = torch.randn(z.shape, generator=g, dtype=torch.float64).to(device)
    grads = torch.autograd.grad(z, (mu, logvar), upstream)

    shape = torch.broadcast_shapes(mu.shape, logvar.shape)
    eps = noise(shape, seed, offset, device=device, num_samples=num_samples)
    mu_r, logvar_r = _leaf(mu), _leaf(logvar)
    z_ref = reference.gaussian_rsample_from_noise(mu_r, logvar_r, eps)
    grads_ref = torch.autograd.grad(z_ref, (mu_r, logvar_r), upstream)
    for got, want in zip(grads, grads_ref):
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, **tolerance(torch.float64))


@requires_extension
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_gradient_dtypes(device, dtype):
    mu = _leaf(torch.randn(16, 12, device=device).to(dtype))
    logvar = _leaf(torch.randn(16, 12, device=device).to(dtype))
    z, (seed, offset) = run_with_state(mu, logvar, 3)
    upstream = torch.randn_like(z)
    grad_mu, grad_logvar = torch.autograd.grad(z, (mu, logvar), upstream)
    assert grad_mu.dtype == dtype and grad_logvar.dtype == dtype
    eps = noise((16, 12), seed, offset, device=device, dtype=torch.float32, num_samples=3).double()
    if dtype == torch.float64:
        eps = noise((16, 12), seed, offset, device=device, num_samples=3)
    up = upstream.double()
    want_mu = up.sum(0)
    want_logvar = (up * eps).sum(0) * 0.5 * torch.exp(0.5 * logvar.double())
    torch.testing.assert_close(grad_mu.double(), want_mu, **tolerance(dtype))
    torch.testing.assert_close(grad_logvar.double(), want_logvar, **tolerance(dtype))


@requires_extension
def test_mixed_dtype_gradients_come_back_in_each_inputs_dtype(device):
    mu = _leaf(torch.randn(4, 8, device=device))
    logvar = _leaf(torch.randn(8, device=device, dtype=torch.float64))
    gradext.gaussian_rsample(mu, logvar, 2).sum().backward()
    assert mu.grad.dtype == torch.float32 and logvar.grad.dtype == torch.float64
    torch.testing.assert_close(mu.grad, torch.full((4, 8), 2.0, device=device))


@requires_extension
@pytest.mark.parametrize("num_samples", [None, 3])
def test_gradcheck_float64(device, num_samples):
    mu = _leaf(torch.randn(3, 4, dtype=torch.float64, device=device))
    logvar = _leaf(torch.randn(4, dtype=torch.float64, device=device))

    def fn(mu, logvar):  # a fresh generator per call: the same noise on every evaluation
        gen = torch.Generator(device=device).manual_seed(0)
        return gradext.gaussian_rsample(mu, logvar, num_samples, generator=gen)

    assert torch.autograd.gradcheck(fn, (mu, logvar))
    seeded = lambda mu, logvar: torch.ops.gradext._gaussian_rsample_seeded(  # noqa: E731
        mu, logvar, num_samples, 3, 8
    )[0]
    assert torch.autograd.gradcheck(seeded, (mu, logvar))


def test_gradient_formula_on_any_implementation(implementation, device):
    """d/dmu = sum_k grad, d/dlogvar = sum_k grad * (z - mu) / 2, checked from z itself."""
    mu = _leaf(torch.randn(10, 6, dtype=torch.float64, device=device))
    logvar = _leaf(torch.randn(10, 6, dtype=torch.float64, device=device))
    z = gradext.gaussian_rsample(mu, logvar, 4)
    upstream = torch.randn_like(z)
    grad_mu, grad_logvar = torch.autograd.grad(z, (mu, logvar), upstream)
    torch.testing.assert_close(grad_mu, upstream.sum(0))
    torch.testing.assert_close(grad_logvar, (upstream * (z.detach() - mu.detach()) / 2).sum(0))


@pytest.mark.parametrize("which", ["mu", "logvar"])
def test_only_one_input_requires_grad(implementation, device, which):
    mu = torch.randn(5, 4, dtype=torch.float64, device=device)
    logvar = torch.randn(4, dtype=torch.float64, device=device)
    leaf = _leaf(mu if which == "mu" else logvar)
    args = (leaf, logvar) if which == "mu" else (mu, leaf)
    z = gradext.gaussian_rsample(*args, 3)
    (grad,) = torch.autograd.grad(z.sum(), leaf)
    assert grad.shape == leaf.shape
    if which == "mu":
        torch.testing.assert_close(grad, torch.full_like(mu, 3.0))
    else:
        torch.testing.assert_close(grad, ((z.detach() - mu) / 2).sum((0, 1)))


@requires_extension
@pytest.mark.parametrize("num_samples", [1, 64])
def test_autograd_saves_no_noise(device, num_samples):
    """What autograd keeps for backward is logvar and the 2-element (seed, offset) state,
    whatever the number of samples (count with saved_tensors_hooks)."""
    mu = _leaf(torch.randn(128, 32, device=device))
    logvar = _leaf(torch.randn(128, 32, device=device))
    saved = []

    def pack(t):
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        z = gradext.gaussian_rsample(mu, logvar, num_samples)
    # Exactly logvar and the (seed, offset) pair; nothing scales with num_samples.
    assert sorted(t.numel() for t in saved) == [2, logvar.numel()]
    assert any(t.data_ptr() == logvar.data_ptr() for t in saved)
    z.sum().backward()


def test_reference_keeps_noise_for_contrast(device):
    """The plain-PyTorch version keeps per-sample tensors: the cost the fused op removes."""
    mu = _leaf(torch.randn(128, 32, device=device))
    logvar = _leaf(torch.randn(128, 32, device=device))
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        reference.gaussian_rsample(mu, logvar, 64)
    assert sum(t.numel() for t in saved) >= 64 * mu.numel()


@requires_extension
@pytest.mark.parametrize("has_sample_dim", [False, True])
def test_backward_op_skips_grad_mu_when_not_needed(device, has_sample_dim):
    """need_grad_mu=False (what autograd asks for with one sample, where grad_mu is grad
    itself): grad_mu comes back empty and grad_logvar is unchanged."""
    mu = torch.randn(6, 8, dtype=torch.float64, device=device)
    logvar = torch.randn(8, dtype=torch.float64, device=device)
    z, state = torch.ops.gradext._gaussian_rsample_seeded(
        mu, logvar, 1 if has_sample_dim else None, 5, 0
    )
    grad = torch.randn_like(z)
    args = (grad, logvar, state, list(mu.shape), has_sample_dim)
    full_mu, full_logvar = torch.ops.gradext._gaussian_rsample_backward(*args, True)
    no_mu, only_logvar = torch.ops.gradext._gaussian_rsample_backward(*args, False)
    assert no_mu.numel() == 0
    torch.testing.assert_close(only_logvar, full_logvar, rtol=0, atol=0)
    torch.testing.assert_close(full_mu, grad.reshape(mu.shape), rtol=0, atol=0)


@requires_extension
def test_one_sample_grad_mu_is_the_incoming_grad(device):
    """With one sample and mu of z's shape, d z / d mu = 1 hands grad through uncopied."""
    mu = _leaf(torch.randn(6, 8, device=device))
    logvar = _leaf(torch.randn(6, 8, device=device))
    z = gradext.gaussian_rsample(mu, logvar)
    upstream = torch.randn_like(z)
    grad_mu, _ = torch.autograd.grad(z, (mu, logvar), upstream)
    assert grad_mu.data_ptr() == upstream.data_ptr()


@requires_extension
@pytest.mark.parametrize("op", ["gaussian_rsample", "normal_rsample"])
@pytest.mark.parametrize("num_samples", [None, 1, 3])
def test_gradient_of_the_spread_alone(device, op, num_samples):
    """autograd.grad into the second parameter only, while the first requires grad too: the
    mean's gradient is not computed and nothing else changes (the fused backward's empty
    placeholder for it never reaches autograd)."""
    mean = torch.randn(4, 5, device=device, dtype=torch.float64, requires_grad=True)
    spread = (torch.rand(5, device=device, dtype=torch.float64) + 0.5).requires_grad_()
    sample = getattr(gradext, op)
    z = sample(mean, spread, num_samples, generator=torch.Generator(device).manual_seed(3))
    upstream = torch.randn_like(z)
    (alone,) = torch.autograd.grad(z, spread, upstream, retain_graph=True)
    _, both = torch.autograd.grad(z, (mean, spread), upstream)
    assert torch.equal(alone, both)

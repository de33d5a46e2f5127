"""gaussian_rsample forward: values against the reference on the same noise, shapes,
broadcasting, strides, dtypes, reproducibility and invariance of the noise."""

from __future__ import annotations

import pytest
import torch

import gradext
from gradext import reference
from helpers.common import ALL_DTYPES, num_threads, requires_extension, tolerance
from helpers.gaussian import noise, run_with_state
from helpers.paths import cpu_variants_to_compare


def _inputs(shape_mu, shape_logvar, dtype=torch.float64, device="cpu", seed=0):
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(shape_mu, generator=g, dtype=torch.float64).to(device, dtype)
    logvar = (0.5 * torch.randn(shape_logvar, generator=g, dtype=torch.float64)).to(device, dtype)
    return mu, logvar


@requires_extension
@pytest.mark.parametrize("num_samples", [None, 1, 3])
@pytest.mark.parametrize(
    "shape_mu, shape_logvar",
    [
        ((64, 16), (64, 16)),  # the usual encoder output
        ((8, 16), (16,)),  # per-dimension logvar
        ((8, 16), ()),  # scalar logvar
        ((8, 1), (1, 16)),  # outer-product broadcast
        ((3, 5, 7), (5, 1)),  # middle-dimension broadcast
        ((7,), (7,)),  # numel not a multiple of 4
        ((), ()),  # scalars
    ],
)
def test_matches_reference_on_same_noise(device, num_samples, shape_mu, shape_logvar):
    mu, logvar = _inputs(shape_mu, shape_logvar, device=device)
    z, (seed, offset) = run_with_state(mu, logvar, num_samples)
    shape = torch.broadcast_shapes(mu.shape, logvar.shape)
    expected_shape = shape if num_samples is None else (num_samples, *shape)
    assert z.shape == expected_shape
    eps = noise(shape, seed, offset, device=device, num_samples=num_samples)
    torch.testing.assert_close(
        z, reference.gaussian_rsample_from_noise(mu, logvar, eps), **tolerance(torch.float64)
    )


@requires_extension
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_every_dtype_matches_float64_reference(device, dtype):
    mu, logvar = _inputs((33, 12), (33, 12), dtype=dtype, device=device)
    z, (seed, offset) = run_with_state(mu, logvar, 4)
    assert z.dtype == dtype
    eps = noise((33, 12), seed, offset, device=device, dtype=torch.float32, num_samples=4)
    # The half types compute in float32 and round once, so the float32 noise is theirs too.
    ref_eps = (
        eps.double()
        if dtype != torch.float64
        else noise((33, 12), seed, offset, device=device, num_samples=4)
    )
    expected = reference.gaussian_rsample_from_noise(mu.double(), logvar.double(), ref_eps)
    torch.testing.assert_close(z.double(), expected, **tolerance(dtype))


@requires_extension
def test_mixed_dtypes_promote(device):
    mu, logvar = _inputs((4, 8), (8,), dtype=torch.float32, device=device)
    z = gradext.gaussian_rsample(mu, logvar.double())
    assert z.dtype == torch.float64


@requires_extension
def test_non_contiguous_inputs_match_contiguous(device):
    h = torch.randn(16, 2 * 24, dtype=torch.float64, device=device)
    mu, logvar = h.chunk(2, dim=-1)  # row-strided views, as VAE encoders produce
    assert not mu.is_contiguous()
    mu_t = torch.randn(24, 16, dtype=torch.float64, device=device).t()  # transposed
    for a, b in [(mu, logvar), (mu_t, logvar), (mu[:, ::2], logvar[:, ::2])]:
        gen = torch.Generator(device=device)
        z_strided = gradext.gaussian_rsample(a, b, 3, generator=gen.manual_seed(5))
        z_dense = gradext.gaussian_rsample(
            a.contiguous(), b.contiguous(), 3, generator=gen.manual_seed(5)
        )
        torch.testing.assert_close(z_strided, z_dense, rtol=0, atol=0)


@requires_extension
def test_layout_needing_three_dims_is_handled(device):
    # A permuted 3-D view that no [rows, cols] flattening describes.
    mu = torch.randn(4, 5, 6, dtype=torch.float64, device=device).permute(2, 0, 1)
    logvar = torch.randn(6, 1, 5, dtype=torch.float64, device=device)
    gen = torch.Generator(device=device)
    z1 = gradext.gaussian_rsample(mu, logvar, 2, generator=gen.manual_seed(1))
    z2 = gradext.gaussian_rsample(
        mu.contiguous(), logvar.expand(6, 4, 5).contiguous(), 2, generator=gen.manual_seed(1)
    )
    torch.testing.assert_close(z1, z2, rtol=0, atol=0)


def test_empty_inputs_give_empty_outputs(implementation, device):
    mu = torch.zeros(0, 5, device=device, requires_grad=True)
    logvar = torch.zeros(0, 5, device=device, requires_grad=True)
    z = gradext.gaussian_rsample(mu, logvar, 3)
    assert z.shape == (3, 0, 5)
    z.sum().backward()
    assert mu.grad.shape == (0, 5) and logvar.grad.shape == (0, 5)


def test_manual_seed_and_generator_reproduce(implementation, device):
    mu, logvar = _inputs((32, 8), (32, 8), dtype=torch.float32, device=device)
    torch.manual_seed(123)
    a = gradext.gaussian_rsample(mu, logvar, 2)
    b = gradext.gaussian_rsample(mu, logvar, 2)
    torch.manual_seed(123)
    a2 = gradext.gaussian_rsample(mu, logvar, 2)
    assert torch.equal(a, a2)
    assert not torch.equal(a, b)  # the generator advances between calls
    gen = torch.Generator(device=device)
    c = gradext.gaussian_rsample(mu, logvar, 2, generator=gen.manual_seed(7))
    c2 = gradext.gaussian_rsample(mu, logvar, 2, generator=gen.manual_seed(7))
    assert torch.equal(c, c2)


@requires_extension
def test_noise_independent_of_thread_count():
    mu = torch.zeros(300, 1000)  # 300k elements: many parallel tiles
    logvar = torch.zeros(300, 1000)
    results = []
    for threads in (1, 2, 3):
        with num_threads(threads):
            results.append(torch.ops.gradext._gaussian_rsample_seeded(mu, logvar, 2, 99, 3)[0])
    assert torch.equal(results[0], results[1]) and torch.equal(results[0], results[2])


@requires_extension
def test_noise_identical_across_cpu_kernel_variants():
    """Every CPU ISA variant produces bit-identical float32 noise (no FMA contraction)."""
    mu = torch.zeros(4099)
    logvar = torch.zeros(4099)
    variants = cpu_variants_to_compare()
    outputs = {}
    try:
        for variant in variants:
            gradext._extension._C.set_cpu_isa(variant)
            outputs[variant] = torch.ops.gradext._gaussian_rsample_seeded(mu, logvar, 3, 11, 0)[0]
    finally:
        gradext._extension._C.set_cpu_isa("auto")
    for variant, out in outputs.items():
        assert torch.equal(out, outputs[variants[0]]), variant


@requires_extension
def test_offset_and_seed_select_independent_streams():
    zeros = torch.zeros(10000, dtype=torch.float64)
    base = torch.ops.gradext._gaussian_rsample_seeded(zeros, zeros, None, 1, 0)[0]
    other_offset = torch.ops.gradext._gaussian_rsample_seeded(zeros, zeros, None, 1, 4)[0]
    other_seed = torch.ops.gradext._gaussian_rsample_seeded(zeros, zeros, None, 2, 0)[0]
    for other in (other_offset, other_seed):
        corr = torch.corrcoef(torch.stack([base, other]))[0, 1]
        # |corr| of independent streams has standard deviation 1/sqrt(n) = 0.01.
        assert abs(corr) < 0.045

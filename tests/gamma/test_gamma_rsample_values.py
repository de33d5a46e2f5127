"""gamma_rsample's samples: each element is the header sampler's value on its own sub-stream of
(seed, offset) (bitwise, against the ctypes shim of csrc/common/gamma_sampler.h), whatever the
thread count, broadcasting or strides; K samples are elements k * numel(S) + s; every value lies
in the dtype's positive normal range (tiny concentrations included); and the law is Gamma(alpha,
rate) by a one-sample Kolmogorov-Smirnov test against scipy (20,000 samples, p > 1e-3 at fixed
seeds, a threshold a correct sampler misses once in a thousand seeds), on the kernels and the
fallback."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gradext
from helpers.common import ALL_DTYPES, num_threads, requires_extension
from helpers.paths import cpu_variants_supported, on_path

seeded = torch.ops.gradext._gamma_rsample_seeded if gradext.has_extension() else None
ALPHAS = [1e-3, 0.05, 0.3, 0.999, 1.0, 2.5, 17.0, 300.0, 1e4]


def _cpu_variants():
    return [pytest.param(v, id=f"cpu-{v}") for v in cpu_variants_supported()]


@requires_extension
@pytest.mark.parametrize("variant", _cpu_variants())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_each_element_is_the_header_sampler_on_its_sub_stream(gamma_math, dtype, variant):
    """Every CPU ISA variant (the vector first-proposal pass and its scalar fallback) gives the
    scalar header sampler's value, bitwise; alphas below and above 1 and rejected proposals
    (6,000 elements, about 8% of which take the fallback) included."""
    alpha = torch.tensor(ALPHAS * 333, dtype=dtype)
    rate = torch.tensor(2.5, dtype=dtype)
    seed, offset = 2024, 12
    with on_path(f"cpu-{variant}"):
        z = seeded(alpha, rate, 2, seed, offset)
    name, np_dtype = ("float", np.float32) if dtype == torch.float32 else ("double", np.float64)
    expected = np.empty(z.numel(), np_dtype)
    flat_alpha = alpha.repeat(2).numpy()
    for e in range(z.numel()):
        out = np.empty(1, np_dtype)
        getattr(gamma_math, f"gradext_standard_gamma_{name}")(
            flat_alpha[e], seed, offset, e, 1, out
        )
        expected[e] = out[0]
    tiny = np.finfo(np_dtype).tiny
    expected = np.maximum(expected / np_dtype(2.5), tiny)  # the division and clamp, in T
    assert np.array_equal(z.reshape(-1).numpy(), expected)


@requires_extension
@pytest.mark.parametrize("variant", _cpu_variants())
def test_gradient_is_the_header_function_bitwise(gamma_math, variant):
    """The backward's vector lanes (gamma_cpu_impl.h) give the scalar header function's
    dz/dalpha bitwise, series and continued-fraction elements mixed, on every CPU variant
    (float64; the float types stop their expansions earlier and are checked against mpmath)."""
    dtype = torch.float64
    alpha = torch.tensor(ALPHAS * 40, dtype=dtype)
    with on_path(f"cpu-{variant}"):
        z = seeded(alpha, torch.ones((), dtype=dtype), None, 77, 0)
        grad, _ = torch.ops.gradext._gamma_rsample_backward(
            torch.ones_like(z), z, alpha, torch.ones((), dtype=dtype), [True, False]
        )
    expected = [
        gamma_math.gradext_standard_gamma_dz_dalpha(a, x)
        for a, x in zip(alpha.tolist(), z.tolist())
    ]
    assert grad.tolist() == expected


@requires_extension
def test_samples_do_not_depend_on_the_thread_count():
    alpha = torch.rand(300, 70, dtype=torch.float64) * 5 + 0.01
    with num_threads(1):
        one = seeded(alpha, torch.ones(()), 3, 5, 8)
    with num_threads(2):
        two = seeded(alpha, torch.ones(()), 3, 5, 8)
    assert torch.equal(one, two)


@requires_extension
def test_sample_k_is_the_block_after_sample_k_minus_one():
    """num_samples=K gives element k * numel(S) + s: the same as one call over K copies."""
    alpha = torch.rand(4, 6) * 3 + 0.1
    rate = torch.rand(6) + 0.5
    stacked = seeded(alpha, rate, 3, 9, 4)
    flat = seeded(alpha.expand(3, 4, 6).contiguous(), rate, None, 9, 4)
    assert torch.equal(stacked, flat)


@requires_extension
def test_broadcast_and_strided_parameters_equal_their_dense_copies():
    alpha = (torch.rand(6, 5) * 3 + 0.1).t()  # transposed: strided
    rate = torch.rand(6, 1) + 0.5
    got = seeded(alpha, rate.t(), 2, 3, 0)
    dense = seeded(alpha.contiguous(), rate.t().expand(5, 6).contiguous(), 2, 3, 0)
    assert torch.equal(got, dense)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_tiny_concentrations_stay_in_the_support(implementation, dtype):
    """Most of Gamma(1e-3) lies below every dtype's smallest normal: those samples are clamped to
    it, never 0, NaN or inf; a tiny rate does not overflow to inf either."""
    concentration = torch.full((20_000,), 1e-3, dtype=dtype)
    z = gradext.gamma_rsample(concentration, generator=torch.Generator().manual_seed(1))
    info = torch.finfo(dtype)
    assert z.dtype == dtype and torch.isfinite(z).all() and (z >= info.tiny).all()
    big = gradext.gamma_rsample(torch.full((100,), 50.0, dtype=dtype), rate=info.tiny)
    assert torch.isfinite(big).all() and (big <= info.max).all()


def test_generator_reproduces_and_calls_differ(implementation):
    alpha = torch.rand(50) + 0.5
    a = gradext.gamma_rsample(alpha, 2.0, 3, generator=torch.Generator().manual_seed(4))
    b = gradext.gamma_rsample(alpha, 2.0, 3, generator=torch.Generator().manual_seed(4))
    torch.manual_seed(0)
    c, d = gradext.gamma_rsample(alpha, 2.0, 3), gradext.gamma_rsample(alpha, 2.0, 3)
    assert torch.equal(a, b) and not torch.equal(c, d)
    assert a.shape == (3, 50) and a.dtype == torch.float32


def test_shapes_and_dtypes(implementation):
    c = torch.rand(4, 1, dtype=torch.float32) + 0.5
    r = torch.rand(3, dtype=torch.float64) + 0.5
    assert gradext.gamma_rsample(c, r).shape == (4, 3)
    assert gradext.gamma_rsample(c, r).dtype == torch.float64
    assert gradext.gamma_rsample(c, r, 2).shape == (2, 4, 3)
    assert gradext.gamma_rsample(torch.ones(0, 3), 1.0, 2).shape == (2, 0, 3)
    assert gradext.gamma_rsample(c.half(), 2.0).dtype == torch.float16


@pytest.mark.parametrize("alpha, rate", [(0.3, 2.0), (2.5, 0.5), (60.0, 3.0), (1e-2, 1.0)])
def test_samples_follow_gamma_alpha_rate(implementation, alpha, rate):
    scipy_stats = pytest.importorskip("scipy.stats")
    z = gradext.gamma_rsample(
        torch.full((20_000,), alpha, dtype=torch.float64),
        torch.tensor(rate, dtype=torch.float64),
        generator=torch.Generator().manual_seed(11),
    )
    law = scipy_stats.gamma(alpha, scale=1 / rate)
    assert scipy_stats.kstest(z.numpy(), law.cdf).pvalue > 1e-3

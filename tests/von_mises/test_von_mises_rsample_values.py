"""von_mises_rsample's samples: a pure function of (seed, offset, element) (the same on every CPU
ISA variant, any thread count, broadcast or strided parameters; K samples are elements
k * numel(S) + s); values in [-pi, pi) and never NaN for any dtype, concentrations from 1e-30 to
1e30 and locations far outside [-pi, pi); and the law is von Mises(loc, concentration) by a
one-sample Kolmogorov-Smirnov test of the offset x - loc (wrapped) against scipy's von Mises CDF
(20,000 samples, p > 1e-3 at fixed seeds, a threshold a correct sampler misses once in a
thousand seeds), on the kernels and the fallback."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import gradext
from helpers.common import ALL_DTYPES, num_threads, requires_extension
from helpers.paths import cpu_variants_supported, on_path

seeded = torch.ops.gradext._von_mises_rsample_seeded if gradext.has_extension() else None
KAPPAS = [1e-3, 0.05, 0.5, 1.0, 2.5, 17.0, 300.0, 1e4, 1e7]


def _wrap(x):
    return (x + math.pi) % (2 * math.pi) - math.pi


@requires_extension
@pytest.mark.parametrize(
    "variant", [pytest.param(v, id=f"cpu-{v}") for v in cpu_variants_supported()]
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_each_element_is_the_header_sampler_on_its_sub_stream(von_mises_math, dtype, variant):
    """Every CPU ISA variant (the vector first-proposal pass and its scalar fallback) gives the
    scalar header sampler's value (the CUDA kernel's code, through the ctypes shim), bitwise:
    concentrations from 1e-3 to 1e7, locations that wrap, rejected proposals included (5,400
    elements, about a fifth of which take the fallback)."""
    kappa = torch.tensor(KAPPAS * 300, dtype=dtype)
    loc = torch.linspace(-7, 7, kappa.numel(), dtype=dtype)
    seed, offset = 2024, 12
    with on_path(f"cpu-{variant}"):
        x = seeded(loc, kappa, 2, seed, offset)
    name, np_dtype = ("float", np.float32) if dtype == torch.float32 else ("double", np.float64)
    sample = getattr(von_mises_math, f"gradext_von_mises_{name}")
    expected = np.empty(x.numel(), np_dtype)
    flat_loc, flat_kappa = loc.repeat(2).numpy(), kappa.repeat(2).numpy()
    out = np.empty(1, np_dtype)
    for e in range(x.numel()):
        sample(flat_loc[e], flat_kappa[e], seed, offset, e, 1, out)
        expected[e] = out[0]
    assert np.array_equal(x.reshape(-1).numpy(), expected)


@requires_extension
def test_samples_do_not_depend_on_the_thread_count_or_layout():
    kappa = torch.rand(300, 70, dtype=torch.float64) * 5 + 0.01
    loc = torch.randn(70, 300, dtype=torch.float64).t()  # strided
    with num_threads(1):
        one = seeded(loc, kappa, 3, 5, 8)
    with num_threads(2):
        two = seeded(loc.contiguous(), kappa, 3, 5, 8)
    assert torch.equal(one, two)


@requires_extension
def test_k_samples_are_the_elements_of_the_expanded_call():
    """Sample k of element s is element k * numel(S) + s of the call: the same as one sample of
    parameters expanded to (K, *S), and broadcasting a parameter changes nothing."""
    loc = torch.randn(4, 5, dtype=torch.float64)
    kappa = torch.rand(5, dtype=torch.float64) + 0.3
    stacked = seeded(loc, kappa, 3, 11, 2)
    expanded = seeded(loc.expand(3, 4, 5), kappa.expand(3, 4, 5).contiguous(), None, 11, 2)
    assert stacked.shape == (3, 4, 5) and torch.equal(stacked, expanded)
    assert not torch.equal(stacked[0], stacked[1])


@requires_extension
def test_offsets_and_seeds_select_different_streams():
    kappa = torch.full((1000,), 2.0)
    loc = torch.zeros(())
    a, b, c = (
        seeded(loc, kappa, None, 1, 0),
        seeded(loc, kappa, None, 1, 1),
        seeded(loc, kappa, None, 2, 0),
    )
    assert not torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(a, seeded(loc, kappa, None, 1, 0))


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_values_lie_in_the_circle_for_every_dtype(implementation, dtype):
    info = torch.finfo(dtype)
    kappa = torch.tensor([info.tiny, 1e-3, 0.7, 40.0, 1e4, min(1e30, info.max)], dtype=dtype)
    loc = torch.tensor([0.0, 3.14159, -3.1, 50.0, -1e3, 3.0])
    x = gradext.von_mises_rsample(
        loc.to(dtype), kappa.to(dtype), 500, generator=torch.Generator().manual_seed(1)
    )
    assert x.dtype == dtype and x.shape == (500, 6)
    xf = x.double()
    assert torch.isfinite(xf).all()
    pi = torch.tensor(math.pi, dtype=dtype).double()
    assert (xf >= -pi).all() and (xf <= pi).all()


def test_large_concentrations_concentrate_at_loc(implementation):
    """At kappa = 1e8 the angle's standard deviation is 1e-4: the wrapped offsets from loc (here
    across the -pi / pi seam) have that spread."""
    loc = torch.tensor(math.pi - 1e-4, dtype=torch.float64)
    x = gradext.von_mises_rsample(
        loc,
        torch.tensor(1e8, dtype=torch.float64),
        20000,
        generator=torch.Generator().manual_seed(2),
    )
    offset = _wrap(x - loc)
    assert abs(offset.std().item() - 1e-4) < 3e-6 and abs(offset.mean().item()) < 5e-6


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kappa", [1e-3, 0.5, 2.0, 30.0, 1e4])
@pytest.mark.parametrize("loc", [0.3, 3.0, -2.9])
def test_kolmogorov_smirnov_against_scipy(implementation, kappa, loc, dtype):
    stats = pytest.importorskip("scipy.stats")
    x = gradext.von_mises_rsample(
        torch.tensor(loc, dtype=dtype),
        torch.full((20000,), kappa, dtype=dtype),
        generator=torch.Generator().manual_seed(7),
    )
    offset = _wrap(x.double().numpy() - loc)
    p = stats.kstest(offset, stats.vonmises(kappa).cdf).pvalue
    assert p > 1e-3, p


def test_a_wrong_concentration_fails_the_test():
    """The KS test above can fail: samples at kappa = 2.2 against the law at 2.0."""
    stats = pytest.importorskip("scipy.stats")
    x = gradext.von_mises_rsample(
        torch.zeros(()), torch.full((20000,), 2.2), generator=torch.Generator().manual_seed(7)
    )
    assert stats.kstest(x.double().numpy(), stats.vonmises(2.0).cdf).pvalue < 1e-3


def test_num_samples_and_empty_shapes(implementation):
    g = torch.Generator().manual_seed(0)
    assert gradext.von_mises_rsample(torch.zeros(0, 3), 1.0, 2, generator=g).shape == (2, 0, 3)
    assert gradext.von_mises_rsample(torch.zeros(()), 1.0, generator=g).shape == ()
    x = gradext.von_mises_rsample(torch.zeros(4), torch.ones(2, 1), 3, generator=g)
    assert x.shape == (3, 2, 4)


def test_the_generator_reproduces_and_the_default_one_advances(implementation):
    loc, kappa = torch.zeros(100), torch.full((100,), 1.5)
    a = gradext.von_mises_rsample(loc, kappa, generator=torch.Generator().manual_seed(4))
    b = gradext.von_mises_rsample(loc, kappa, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    torch.manual_seed(1)
    c, d = gradext.von_mises_rsample(loc, kappa), gradext.von_mises_rsample(loc, kappa)
    torch.manual_seed(1)
    assert torch.equal(gradext.von_mises_rsample(loc, kappa), c) and not torch.equal(c, d)
    assert np.isfinite(c.numpy()).all()

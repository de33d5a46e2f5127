"""dirichlet_rsample's and beta_rsample's samples: points of the simplex (positive, summing to
1 within rounding, tiny concentrations included, every dtype); each entry's log-Gamma the
Gamma sub-stream sampler's (the same words as gamma_rsample's element); independent of the
thread count and of strides; and the law: each Dirichlet marginal x_i ~ Beta(alpha_i, alpha_0 -
alpha_i) and each Beta sample by one-sample Kolmogorov-Smirnov tests against scipy (20,000
samples, p > 1e-3 at fixed seeds, a threshold a correct sampler misses once in a thousand seeds),
on the kernels and the fallback."""

from __future__ import annotations

import pytest
import torch

import gradext
from helpers.common import ALL_DTYPES, num_threads, requires_extension
from helpers.paths import cpu_variants_supported, on_path

seeded = torch.ops.gradext._dirichlet_rsample_seeded if gradext.has_extension() else None


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("alpha", [1e-3, 0.05, 1.0, 30.0])
def test_samples_are_points_of_the_simplex(implementation, dtype, alpha):
    concentration = torch.full((2000, 7), alpha, dtype=dtype)
    x = gradext.dirichlet_rsample(concentration, generator=torch.Generator().manual_seed(3))
    info = torch.finfo(dtype)
    assert x.dtype == dtype and x.shape == (2000, 7)
    assert torch.isfinite(x).all() and (x > 0).all() and (x <= 1).all()
    sums = x.double().sum(-1)
    assert (sums - 1).abs().max().item() <= 8 * info.eps


@requires_extension
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_log_gammas_are_the_gamma_sub_stream_samples(gamma_math, dtype):
    """Entry e's Gamma draw is gamma_sampler's standard_gamma on sub-stream e: the shim's
    value, to the rounding of exp(log g) (the op keeps logs)."""
    import numpy as np

    alpha = torch.tensor([[0.3, 1.0, 2.5, 40.0]], dtype=dtype).expand(50, 4).contiguous()
    _, log_gamma = seeded(alpha, None, 99, 8)
    name, np_dtype = ("float", np.float32) if dtype == torch.float32 else ("double", np.float64)
    sampler = getattr(gamma_math, f"gradext_standard_gamma_{name}")
    expected = np.empty(alpha.numel(), np_dtype)
    for e, a in enumerate(alpha.reshape(-1).tolist()):
        out = np.empty(1, np_dtype)
        sampler(a, 99, 8, e, 1, out)
        expected[e] = out[0]
    got = torch.exp(log_gamma.double()).reshape(-1).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5 if dtype == torch.float32 else 1e-13)


@requires_extension
def test_samples_do_not_depend_on_threads_strides_or_isa():
    concentration = torch.rand(400, 9, dtype=torch.float64) * 3 + 0.01
    with num_threads(1):
        one = seeded(concentration, 2, 5, 8)
    with num_threads(2):
        two = seeded(concentration, 2, 5, 8)
    strided = seeded(concentration.t().contiguous().t(), 2, 5, 8)
    for got in (two, strided):
        assert torch.equal(got[0], one[0]) and torch.equal(got[1], one[1])
    for variant in cpu_variants_supported():
        with on_path(f"cpu-{variant}"):
            assert torch.equal(seeded(concentration, 2, 5, 8)[0], one[0])


def test_shapes_broadcast_and_generators(implementation):
    c = torch.rand(4, 3) + 0.5
    assert gradext.dirichlet_rsample(c).shape == (4, 3)
    assert gradext.dirichlet_rsample(c, 5).shape == (5, 4, 3)
    assert gradext.dirichlet_rsample(torch.ones(0, 3), 2).shape == (2, 0, 3)
    a = gradext.dirichlet_rsample(c, 2, generator=torch.Generator().manual_seed(4))
    b = gradext.dirichlet_rsample(c, 2, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    beta = gradext.beta_rsample(torch.rand(4, 1) + 0.5, torch.rand(3, dtype=torch.float64) + 0.5)
    assert beta.shape == (4, 3) and beta.dtype == torch.float64
    assert ((beta > 0) & (beta < 1)).all()
    assert gradext.beta_rsample(2.0, torch.ones(6), 3).shape == (3, 6)


@pytest.mark.parametrize("alpha", [[0.3, 0.3, 0.4], [2.0, 5.0, 0.7, 11.0]])
def test_dirichlet_marginals_are_beta(implementation, alpha):
    scipy_stats = pytest.importorskip("scipy.stats")
    concentration = torch.tensor(alpha, dtype=torch.float64).expand(20_000, len(alpha))
    x = gradext.dirichlet_rsample(concentration, generator=torch.Generator().manual_seed(12))
    total = sum(alpha)
    for i, a in enumerate(alpha):
        law = scipy_stats.beta(a, total - a)
        assert scipy_stats.kstest(x[:, i].numpy(), law.cdf).pvalue > 1e-3, i


@pytest.mark.parametrize("c1, c0", [(0.5, 0.5), (2.0, 7.0), (30.0, 3.0)])
def test_beta_samples_follow_the_beta_law(implementation, c1, c0):
    scipy_stats = pytest.importorskip("scipy.stats")
    x = gradext.beta_rsample(
        torch.full((20_000,), c1, dtype=torch.float64),
        torch.tensor(c0, dtype=torch.float64),
        generator=torch.Generator().manual_seed(5),
    )
    assert scipy_stats.kstest(x.numpy(), scipy_stats.beta(c1, c0).cdf).pvalue > 1e-3


@requires_extension
@pytest.mark.parametrize("categories", [2, 5, 70])
def test_cpu_kernels_are_the_row_code_the_gpu_runs(gamma_math, categories):
    """Every CPU variant's vector passes (log-Gammas, normalization, gradient lanes) against the
    scalar row code of csrc/common/dirichlet_row.h, which the CUDA kernels run: bitwise, forward
    and backward, float64, concentrations from 1e-3 (underflowing draws) to 300."""
    import numpy as np

    g = torch.Generator().manual_seed(categories)
    concentration = torch.tensor([1e-3, 0.3, 1.0, 4.0, 300.0], dtype=torch.float64)
    concentration = concentration[torch.randint(0, 5, (30, categories), generator=g)]
    grad = torch.randn(concentration.shape, generator=g, dtype=torch.float64)
    rows = concentration.numpy()
    expected_x, expected_log, expected_grad = (np.empty_like(rows) for _ in range(3))
    for r in range(rows.shape[0]):
        alpha = np.ascontiguousarray(rows[r])
        x_row, log_row, out = (np.empty(categories) for _ in range(3))
        assert (
            gamma_math.gradext_dirichlet_row_double(
                alpha, categories, 21, 4, r * categories, x_row, log_row
            )
            == -1
        )
        gamma_math.gradext_dirichlet_row_backward_double(
            np.ascontiguousarray(grad[r].numpy()), x_row, log_row, alpha, categories, out
        )
        expected_x[r], expected_log[r], expected_grad[r] = x_row, log_row, out
    for variant in cpu_variants_supported():
        with on_path(f"cpu-{variant}"):
            x, log_gamma = seeded(concentration, None, 21, 4)
            got_grad = torch.ops.gradext._dirichlet_rsample_backward(
                grad, x, log_gamma, concentration
            )
        assert np.array_equal(log_gamma.numpy(), expected_log), variant
        assert np.array_equal(x.numpy(), expected_x), variant
        assert np.array_equal(got_grad.numpy(), expected_grad), variant

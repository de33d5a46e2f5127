"""Inputs that define no distribution get NaN out, the same on every path (the fallback, each CPU
ISA variant, CUDA): the README's "NaN, inf and masked inputs" table, here as assertions.

A row of logits with a NaN, a +inf or no finite value (every category -inf) has no softmax, so
gumbel_softmax's soft and hard samples are NaN in every position of that row (as torch.softmax
and F.gumbel_softmax give), and categorical_sample returns index 0 with a NaN log_prob; the
gradients of those rows are NaN. A NaN Bernoulli logit gives a NaN hard gumbel_sigmoid sample.
Rows with some -inf and a finite logit are ordinary: the -inf categories are never drawn. A tau
so small that 1/tau overflows gives the tau -> 0 limit, the hard sample of the same noise.
"""

from __future__ import annotations

import math

import pytest
import torch

import gradext
from helpers.common import ALL_DTYPES, tau_tensor
from helpers.paths import cpu_variants_to_compare, every_path, on_path

NAN, INF = math.nan, math.inf


@pytest.fixture(params=every_path())
def device(request):
    with on_path(request.param) as device:
        yield device


def _logits_with_invalid_rows(categories, dtype, device):
    """Rows 1, 2, 3 define no distribution (a NaN, a +inf, all -inf); row 4 is masked but
    valid (one finite category, at the end); rows 0 and 5 are ordinary."""
    g = torch.Generator().manual_seed(categories)
    x = torch.randn(6, categories, generator=g, dtype=torch.float64)
    x[1, categories // 2] = NAN
    x[2, min(1, categories - 1)] = INF
    x[3] = -INF
    x[4, :-1] = -INF
    return x.to(dtype=dtype, device=device)


INVALID_ROWS, VALID_ROWS = [1, 2, 3], [0, 4, 5]


def _generator(device, seed=7):
    return torch.Generator(device=device).manual_seed(seed)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("categories", [3, 10, 3000])
@pytest.mark.parametrize("hard", [False, True])
def test_gumbel_softmax_rows_without_a_distribution_are_nan(device, dtype, categories, hard):
    logits = _logits_with_invalid_rows(categories, dtype, device).requires_grad_()
    y = gradext.gumbel_softmax(logits, tau=0.7, hard=hard, generator=_generator(device))
    assert y[INVALID_ROWS].isnan().all()
    assert y[VALID_ROWS].isfinite().all()
    if hard:
        valid = y[VALID_ROWS].float()
        assert torch.equal(valid.sum(-1), torch.ones(3, device=device))
        assert ((valid == 0) | (valid == 1)).all()
    assert y[4, -1] == 1 if hard else y[4, :-1].eq(0).all()  # masked categories never drawn
    weights = torch.randn(y.shape, generator=torch.Generator().manual_seed(1)).to(y)
    (grad,) = torch.autograd.grad((y * weights).sum(), logits)
    assert grad[INVALID_ROWS].isnan().all()
    assert grad[VALID_ROWS].isfinite().all()


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("hard", [False, True])
def test_gumbel_sigmoid_nan_stays_nan(device, dtype, hard):
    logits = torch.tensor([NAN, INF, -INF, 0.3, -0.2], dtype=dtype, device=device)
    logits.requires_grad_()
    y = gradext.gumbel_sigmoid(logits, hard=hard, generator=_generator(device))
    assert y[0].isnan() and y[1] == 1 and y[2] == 0
    assert y[3:].isfinite().all()
    (grad,) = torch.autograd.grad(y.sum(), logits)
    assert grad[0].isnan() and grad[1] == 0 and grad[2] == 0 and grad[3:].isfinite().all()


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("categories", [3, 10, 3000])
def test_categorical_sample_rows_without_a_distribution(device, dtype, categories):
    logits = _logits_with_invalid_rows(categories, dtype, device).requires_grad_()
    index, log_prob = gradext.categorical_sample(logits, 4, generator=_generator(device))
    assert (index[:, INVALID_ROWS] == 0).all()
    assert log_prob[:, INVALID_ROWS].isnan().all()
    assert log_prob[:, VALID_ROWS].isfinite().all()
    assert (index[:, 4] == categories - 1).all() and (log_prob[:, 4] == 0).all()
    (grad,) = torch.autograd.grad(log_prob.sum(), logits)
    assert grad[INVALID_ROWS].isnan().all()
    assert grad[VALID_ROWS].isfinite().all()  # masked categories of a valid row get 0


@pytest.mark.parametrize(
    "dtype, tau",
    [
        (torch.float32, 1e-39),
        (torch.float16, 1e-39),
        (torch.bfloat16, 1e-39),
        (torch.float64, 1e-320),
    ],
)
@pytest.mark.parametrize("categories", [4, 3000])
def test_tiny_tau_is_the_hard_limit(device, dtype, tau, categories):
    """1/tau overflows the math type: the soft sample is the hard one of the same noise."""
    logits = torch.randn(64, categories, generator=torch.Generator().manual_seed(3))
    logits = logits.to(dtype=dtype, device=device)
    soft = gradext.gumbel_softmax(logits, tau=tau, generator=_generator(device))
    hard = gradext.gumbel_softmax(logits, tau=1.0, hard=True, generator=_generator(device))
    assert torch.equal(soft, hard)
    soft = gradext.gumbel_sigmoid(logits, tau=tau, generator=_generator(device))
    hard = gradext.gumbel_sigmoid(logits, tau=1.0, hard=True, generator=_generator(device))
    assert torch.equal(soft, hard)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_empty_rows_and_empty_batches(device, dtype):
    assert gradext.gumbel_softmax(torch.empty(0, 5, dtype=dtype, device=device)).shape == (0, 5)
    index, log_prob = gradext.categorical_sample(torch.empty(0, 5, dtype=dtype, device=device), 2)
    assert index.shape == log_prob.shape == (2, 0)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_gaussian_rsample_nan_in_nan_out(device, dtype):
    mu = torch.tensor([0.5, NAN, 0.0, 1.0], dtype=dtype, device=device).requires_grad_()
    logvar = torch.tensor([0.0, 0.0, NAN, -INF], dtype=dtype, device=device).requires_grad_()
    z = gradext.gaussian_rsample(mu, logvar, 3, generator=_generator(device))
    assert z[:, 1:3].isnan().all() and z[:, 0].isfinite().all()
    assert torch.equal(z[:, 3], mu[3].detach().expand(3))  # variance 0: exactly mu
    grad_mu, grad_logvar = torch.autograd.grad(z.sum(), (mu, logvar))
    assert torch.equal(grad_mu.float(), torch.full((4,), 3.0, device=device))
    assert grad_logvar[2].isnan() and grad_logvar[[0, 1]].isfinite().all()
    assert grad_logvar[3] == 0


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_normal_rsample_nan_in_nan_out_and_exact_at_scale_zero(device, dtype):
    """NaN in either parameter stays in its element; scale 0 gives exactly loc and the finite
    gradient sum grad * eps (gaussian_rsample's logvar = -inf gives a zero one); an infinite
    scale is inf or NaN in its element only."""
    loc = torch.tensor([0.5, NAN, 0.0, 1.0, 2.0], dtype=dtype, device=device).requires_grad_()
    scale = torch.tensor([1.0, 1.0, NAN, 0.0, INF], dtype=dtype, device=device).requires_grad_()
    z = gradext.normal_rsample(loc, scale, 3, generator=_generator(device))
    assert z[:, 1:3].isnan().all() and z[:, 0].isfinite().all()
    assert torch.equal(z[:, 3], loc[3].detach().expand(3))
    assert not z[:, 4].isfinite().any()
    grad_loc, grad_scale = torch.autograd.grad(z.sum(), (loc, scale))
    assert torch.equal(grad_loc.float(), torch.full((5,), 3.0, device=device))
    # the same noise (as a sample of N(0, 1)), rounded to the dtype: the gradient sums it
    ones = torch.ones(5, dtype=dtype, device=device)
    eps = gradext.normal_rsample(0 * ones, ones, 3, generator=_generator(device))
    loose = dict(rtol=1e-2, atol=1e-2) if dtype in (torch.float16, torch.bfloat16) else {}
    torch.testing.assert_close(grad_scale[3].float(), eps[:, 3].float().sum(), **loose)
    assert grad_scale[3] != 0
    assert grad_scale[[0, 1, 2, 4]].isfinite().all()  # grad * eps: the parameters are not in it


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("name", ["score_function_loo", "vimco"])
def test_estimators_keep_nan_to_its_datapoint(device, dtype, name):
    values = torch.randn(5, 3, generator=torch.Generator().manual_seed(4)).to(dtype).to(device)
    values[2, 1] = NAN
    values.requires_grad_()
    log_prob = torch.zeros_like(values, requires_grad=True)
    out = getattr(gradext, name)(values, log_prob)
    assert out[1].isnan() and out[[0, 2]].isfinite().all()
    grad_values, grad_log_prob = torch.autograd.grad(out.sum(), (values, log_prob))
    assert grad_log_prob[:, 1].isnan().all() and grad_log_prob[:, [0, 2]].isfinite().all()
    assert grad_values[:, [0, 2]].isfinite().all()


def test_gumbel_noise_is_bitwise_the_same_on_every_cpu_variant():
    """The 32-bit Gumbel tail (csrc/common/random_transforms.h) vectorizes the same way in every
    ISA variant: float32 samples, argmaxes and log-probabilities agree bitwise, with logits that
    put categories deep in the tail."""
    variants = cpu_variants_to_compare()
    logits = torch.randn(513, 37, generator=torch.Generator().manual_seed(8)) * 8
    results = {}
    for variant in variants:
        with on_path(f"cpu-{variant}"):
            soft, _ = torch.ops.gradext._gumbel_softmax_seeded(logits, tau_tensor(0.5), False, 5, 1)
            log_prob, index = torch.ops.gradext._categorical_sample_seeded(logits, 3, 5, 1)
            results[variant] = (soft, log_prob, index)
    for variant, outputs in results.items():
        for got, want in zip(outputs, results[variants[0]]):
            assert torch.equal(got, want), variant

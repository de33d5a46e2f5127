"""conditional_relaxation's values: the kernels against the reference formula on their own noise
(every CPU variant), soft against gumbel_sigmoid / gumbel_softmax of the same Philox stream, b
exactly what the relaxations round to (H(z_tilde) = b, extreme and masked logits included), the
conditional noise's distribution against rejection sampling, NaN rows, thread counts."""

from __future__ import annotations

import math

import pytest
import torch

import gradext
from gradext import reference
from helpers.common import ALL_DTYPES, num_threads, requires_extension, tau_tensor, tolerance
from helpers.paths import (
    CPU_VARIANTS,
    cpu_variants_to_compare,
    on_path,
    skip_unless_cpu_variant,
)

ops = torch.ops.gradext
SEED, OFFSET = 11, 8


def _seeded(logits, tau, categorical, seed=SEED, offset=OFFSET):
    return ops._conditional_relaxation_seeded(logits, tau_tensor(tau), categorical, seed, offset)


def _on_same_noise(logits, tau, categorical, rng_state):
    noise, cond_noise = ops._conditional_relaxation_noise(logits, rng_state, categorical)
    return reference.relaxations_from_noise(logits, noise, cond_noise, tau, categorical)


def _logits(shape, dtype=torch.float64, scale=3.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(shape, generator=g, dtype=torch.float64)).to(dtype)


@requires_extension
@pytest.mark.parametrize("variant", CPU_VARIANTS)
@pytest.mark.parametrize("categorical", [False, True], ids=["bernoulli", "categorical"])
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_kernels_match_the_reference_on_their_own_noise(variant, categorical, dtype):
    skip_unless_cpu_variant(variant)
    # Rows of 1, 3, 10 and 700 categories (batches of several rows, one row past a tile).
    for shape in [(5, 1), (41, 3), (64, 10), (3, 700)]:
        logits = _logits(shape, dtype, seed=shape[1])
        with on_path(f"cpu-{variant}"):
            b, soft, soft_cond, state = _seeded(logits, 0.7, categorical)
            expected = _on_same_noise(logits, 0.7, categorical, state)
        torch.testing.assert_close(b, expected[0], rtol=0, atol=0)
        torch.testing.assert_close(soft, expected[1], **tolerance(dtype))
        torch.testing.assert_close(soft_cond, expected[2], **tolerance(dtype))


@requires_extension
@pytest.mark.parametrize("categorical", [False, True], ids=["bernoulli", "categorical"])
def test_every_cpu_variant_gives_the_same_noise_and_samples(categorical):
    logits = _logits((37, 13), torch.float32)
    results = []
    for variant in cpu_variants_to_compare():
        with on_path(f"cpu-{variant}"):
            b, soft, soft_cond, state = _seeded(logits, 0.5, categorical)
            noise = ops._conditional_relaxation_noise(logits, state, categorical)
        results.append((b, soft, soft_cond, *noise))
    for other in results[1:]:
        for a, c in zip(results[0], other):
            assert torch.equal(a, c)


@requires_extension
def test_soft_is_the_gumbel_sample_of_the_same_stream():
    """The z noise is the relaxed ops' own (word i of the stream): soft and b are
    gumbel_sigmoid's and gumbel_softmax's soft and hard samples of the same (seed, offset)."""
    logits = _logits((29, 11), torch.float32)
    b, soft, _, _ = _seeded(logits, 0.6, False)
    hard, soft_sigmoid = ops._gumbel_sigmoid_seeded(logits, tau_tensor(0.6), True, SEED, OFFSET)
    assert torch.equal(b, hard) and torch.equal(soft, soft_sigmoid)
    b, soft, _, _ = _seeded(logits, 0.6, True)
    hard, soft_softmax = ops._gumbel_softmax_seeded(logits, tau_tensor(0.6), True, SEED, OFFSET)
    assert torch.equal(b, hard)
    torch.testing.assert_close(soft, soft_softmax, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_b_is_what_both_relaxations_round_to(implementation, dtype):
    """H(z_tilde) = b on every draw: for Bernoulli soft_cond > 1/2 exactly where b = 1 (in
    float64 at tau = 1, where sigmoid of the smallest |z_tilde|, 6e-8, is still above 1/2), for
    categorical argmax soft_cond = argmax b, with logits far out in both tails and masked."""
    logits = torch.cat([_logits((4000,), scale=4.0), torch.tensor([40.0, -40.0, 1e4, -1e4])])
    b, soft, soft_cond = gradext.conditional_relaxation(
        logits.to(torch.float64), 1.0, generator=torch.Generator().manual_seed(3)
    )
    assert torch.equal(b == 1, soft_cond > 0.5)
    assert torch.equal(b == 1, soft > 0.5)
    rows = _logits((3000, 7), scale=5.0, seed=1)
    rows[:, 2] = -math.inf  # masked
    rows[:100, 0] = 30.0  # nearly certain
    rows[100:200, 1] = -30.0
    b, soft, soft_cond = gradext.conditional_relaxation(
        rows.to(dtype), 0.3, categorical=True, generator=torch.Generator().manual_seed(4)
    )
    assert ((b == 0) | (b == 1)).all() and (b.sum(-1) == 1).all()
    assert torch.equal(soft_cond.argmax(-1), b.argmax(-1))
    assert torch.equal(soft.argmax(-1), b.argmax(-1))
    assert (b[:, 2] == 0).all() and (soft[:, 2] == 0).all() and (soft_cond[:, 2] == 0).all()


def _ks_pvalue(x, y):
    scipy_stats = pytest.importorskip("scipy.stats")
    return scipy_stats.ks_2samp(x.double().numpy(), y.double().numpy()).pvalue


@pytest.mark.parametrize("logit", [-3.0, 0.3, 2.5])
def test_bernoulli_conditional_matches_rejection_sampling(implementation, logit):
    """z_tilde | b against z | H(z) = b: soft_cond of draws with b = k against soft of other
    draws (an independent generator) kept when their b = k (rejection sampling), two-sample
    Kolmogorov-Smirnov, p > 1e-3 at fixed seeds, for k = 0 and 1."""
    n = 60_000
    logits = torch.full((n,), logit, dtype=torch.float64)
    b, _, soft_cond = gradext.conditional_relaxation(
        logits, 0.8, generator=torch.Generator().manual_seed(5)
    )
    b2, soft2, _ = gradext.conditional_relaxation(
        logits, 0.8, generator=torch.Generator().manual_seed(6)
    )
    for k in (0.0, 1.0):
        conditional, rejected = soft_cond[b == k], soft2[b2 == k]
        assert conditional.numel() > 500 and rejected.numel() > 500
        assert _ks_pvalue(conditional, rejected) > 1e-3, k


@pytest.mark.parametrize(
    "row", [[0.5, -1.0, 2.0, 0.0], [6.0, -6.0, 0.0, -math.inf]], ids=["moderate", "extreme"]
)
def test_categorical_conditional_matches_rejection_sampling(implementation, row):
    """Per coordinate c and category k: soft_cond[:, c] of draws with argmax k against soft[:, c]
    of independent draws with argmax k (rejection sampling); KS p > 1e-3 at fixed seeds."""
    n = 60_000
    logits = torch.tensor(row, dtype=torch.float64).expand(n, -1).contiguous()
    b, _, soft_cond = gradext.conditional_relaxation(
        logits, 0.7, categorical=True, generator=torch.Generator().manual_seed(7)
    )
    b2, soft2, _ = gradext.conditional_relaxation(
        logits, 0.7, categorical=True, generator=torch.Generator().manual_seed(8)
    )
    k_of, k2_of = b.argmax(-1), b2.argmax(-1)
    tested = 0
    for k in range(len(row)):
        chosen, rejected = k_of == k, k2_of == k
        if chosen.sum() < 100 or rejected.sum() < 100:
            continue
        for c in range(len(row)):
            if math.isinf(row[c]):
                continue
            p = _ks_pvalue(soft_cond[chosen, c], soft2[rejected, c])
            assert p > 1e-3, (k, c, p)
            tested += 1
    assert tested >= 6


def test_a_wrong_conditional_fails_the_rejection_test(implementation):
    """The KS test above can fail: the conditional of the wrong logit is rejected."""
    n = 60_000
    _, _, soft_cond = gradext.conditional_relaxation(
        torch.full((n,), 1.0, dtype=torch.float64), 0.8, generator=torch.Generator().manual_seed(5)
    )
    b2, soft2, _ = gradext.conditional_relaxation(
        torch.full((n,), 0.0, dtype=torch.float64), 0.8, generator=torch.Generator().manual_seed(6)
    )
    conditional = soft_cond[soft_cond > 0.5]
    assert _ks_pvalue(conditional, soft2[b2 == 1]) < 1e-3


@pytest.mark.parametrize("categorical", [False, True], ids=["bernoulli", "categorical"])
def test_bernoulli_and_categorical_frequencies(implementation, categorical):
    """b is an exact sample: frequencies against sigmoid / softmax of the logits, z-test per
    probability over 200k draws, |z| < 4.5."""
    draws = 200_000
    row = torch.tensor([-2.0, 0.0, 0.7, 3.0], dtype=torch.float64)
    logits = row.expand(draws, 4).contiguous()
    b, _, _ = gradext.conditional_relaxation(
        logits, 1.0, categorical=categorical, generator=torch.Generator().manual_seed(9)
    )
    p = torch.softmax(row, 0) if categorical else torch.sigmoid(row)
    freq = b.double().mean(0)
    z = (freq - p) / torch.sqrt(p * (1 - p) / draws)
    assert z.abs().max() < 4.5, z


@pytest.mark.parametrize("categorical", [False, True], ids=["bernoulli", "categorical"])
def test_rows_without_a_distribution_are_nan(implementation, categorical):
    logits = torch.randn(4, 5, dtype=torch.float64)
    logits[0, 1] = math.nan
    if categorical:
        logits[1, :] = -math.inf
        logits[2, 3] = math.inf
    b, soft, soft_cond = gradext.conditional_relaxation(
        logits, 0.5, categorical=categorical, generator=torch.Generator().manual_seed(1)
    )
    if categorical:
        for out in (b, soft, soft_cond):
            assert out[:3].isnan().all() and not out[3].isnan().any()
    else:
        for out in (b, soft, soft_cond):
            assert out.isnan().sum() == 1 and out[0, 1].isnan()


def test_infinite_bernoulli_logits_are_certain(implementation):
    logits = torch.tensor([math.inf, -math.inf] * 50, dtype=torch.float64)
    b, soft, soft_cond = gradext.conditional_relaxation(logits, 0.5)
    assert torch.equal(b, torch.tensor([1.0, 0.0] * 50, dtype=torch.float64))
    assert torch.equal(soft, b) and torch.equal(soft_cond, b)


@requires_extension
@pytest.mark.parametrize("categorical", [False, True], ids=["bernoulli", "categorical"])
def test_thread_count_and_dim_do_not_change_the_sample(categorical):
    logits = _logits((300, 40), torch.float32)
    with num_threads(1):
        one = _seeded(logits, 0.5, categorical)
    with num_threads(2):
        two = _seeded(logits, 0.5, categorical)
    for a, c in zip(one, two):
        assert torch.equal(a, c)
    if categorical:
        generator = torch.Generator().manual_seed(3)
        moved = gradext.conditional_relaxation(
            logits.t(), 0.5, categorical=True, dim=0, generator=generator
        )
        last = gradext.conditional_relaxation(
            logits, 0.5, categorical=True, generator=torch.Generator().manual_seed(3)
        )
        for a, c in zip(moved, last):
            assert torch.equal(a.t(), c)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_dtypes_and_empty_inputs(implementation, dtype):
    for categorical in (False, True):
        b, soft, soft_cond = gradext.conditional_relaxation(
            torch.randn(6, 5).to(dtype), 0.5, categorical=categorical
        )
        assert b.dtype == soft.dtype == soft_cond.dtype == dtype
        assert torch.isfinite(soft).all() and torch.isfinite(soft_cond).all()
        empty = gradext.conditional_relaxation(
            torch.empty(0, 5, dtype=dtype), categorical=categorical
        )
        assert all(t.shape == (0, 5) for t in empty)

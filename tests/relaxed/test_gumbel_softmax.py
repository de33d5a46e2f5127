"""gumbel_softmax: values against the reference on the same noise, exact one-hot samples, the
straight-through gradient, distributional tests, NaN-freedom, errors, drop-in compatibility."""

from __future__ import annotations

import inspect
import math

import pytest
import torch
import torch.nn.functional as F

import gradext
from gradext import reference
from helpers.common import ALL_DTYPES, requires_extension, tau_tensor, tolerance
from helpers.stats import chisquare_pvalue


def _gumbels_of(logits_rows, seed, offset):
    """The kernels' Gumbel noise for (seed, offset), rebuilt in float64 from the 32-bit words'
    double-grid uniforms: every dtype's kernel keeps the word's 32 bits in the Gumbel tail
    (csrc/common/random_transforms.h, exponential<float>), more than the float grid's 24."""
    u = torch.ops.gradext._philox_uniform(logits_rows.double(), seed, offset)
    return -torch.log(-torch.log(u))


@requires_extension
@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("categories", [2, 10, 33, 1024, 5000])
def test_matches_reference_on_same_noise(device, hard, categories):
    logits = torch.randn(6, categories, dtype=torch.float64, device=device)
    y, _ = torch.ops.gradext._gumbel_softmax_seeded(logits, tau_tensor(0.7), hard, 5, 8)
    expected = reference.gumbel_softmax_from_noise(logits, _gumbels_of(logits, 5, 8), 0.7, hard)
    torch.testing.assert_close(y, expected, **tolerance(torch.float64))


@requires_extension
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_every_dtype_matches_reference(device, dtype):
    logits = torch.randn(40, 12, device=device).to(dtype)
    y, soft = torch.ops.gradext._gumbel_softmax_seeded(logits, tau_tensor(0.5), True, 9, 0)
    assert y.dtype == dtype and soft.dtype == dtype
    gumbels = _gumbels_of(logits, 9, 0)
    expected_soft = reference.gumbel_softmax_from_noise(logits.double(), gumbels, 0.5)
    torch.testing.assert_close(soft.double(), expected_soft, **tolerance(dtype))
    # The one-hot follows argmax(logits + g) computed in the kernels' math type.
    scores = logits.to(torch.promote_types(dtype, torch.float32)) + gumbels.to(
        torch.promote_types(dtype, torch.float32)
    )
    assert torch.equal(y.argmax(-1), scores.argmax(-1))


@pytest.mark.parametrize(
    "shape, dim", [((8, 5), -1), ((8, 5), 0), ((3, 4, 6), 1), ((2, 3, 4, 5), -2), ((7,), 0)]
)
def test_hard_is_exact_one_hot_along_dim(implementation, device, shape, dim):
    logits = torch.randn(shape, device=device)
    y = gradext.gumbel_softmax(logits, tau=0.3, hard=True, dim=dim)
    assert y.shape == logits.shape
    assert torch.all((y == 0) | (y == 1))
    assert torch.equal(y.sum(dim), torch.ones_like(y.sum(dim)))


def test_soft_rows_sum_to_one_and_non_contiguous_input(implementation, device):
    base = torch.randn(10, 16, device=device, dtype=torch.float64)
    logits = base.t()  # non-contiguous, categories along dim 0 after transposing back
    y = gradext.gumbel_softmax(logits, tau=2.0, dim=0)
    torch.testing.assert_close(y.sum(0), torch.ones(10, device=device, dtype=torch.float64))
    assert (y > 0).all()


def test_soft_and_hard_give_the_same_gradient(implementation, device):
    logits = torch.randn(16, 10, dtype=torch.float64, device=device, requires_grad=True)
    upstream = torch.randn(16, 10, dtype=torch.float64, device=device)
    grads = []
    for hard in (False, True):
        gen = torch.Generator(device=device).manual_seed(11)
        y = gradext.gumbel_softmax(logits, tau=0.5, hard=hard, generator=gen)
        grads.append(torch.autograd.grad(y, logits, upstream)[0])
    torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=0)


def test_gradient_formula_on_recovered_soft_sample(implementation, device):
    tau = 0.8
    logits = torch.randn(12, 7, dtype=torch.float64, device=device, requires_grad=True)
    y = gradext.gumbel_softmax(
        logits, tau=tau, generator=torch.Generator(device=device).manual_seed(2)
    )
    upstream = torch.randn_like(y)
    (grad,) = torch.autograd.grad(y, logits, upstream)
    ys = y.detach()
    expected = ys * (upstream - (upstream * ys).sum(-1, keepdim=True)) / tau
    torch.testing.assert_close(grad, expected)


@requires_extension
def test_gradcheck_soft_float64(device):
    logits = torch.randn(4, 6, dtype=torch.float64, device=device, requires_grad=True)
    fn = lambda x: torch.ops.gradext._gumbel_softmax_seeded(x, tau_tensor(0.9), False, 1, 0)[0]  # noqa: E731
    assert torch.autograd.gradcheck(fn, (logits,))


def test_reproducible_with_generator_and_manual_seed(implementation, device):
    logits = torch.randn(64, 10, device=device)
    gen = torch.Generator(device=device)
    a = gradext.gumbel_softmax(logits, hard=True, generator=gen.manual_seed(3))
    b = gradext.gumbel_softmax(logits, hard=True, generator=gen.manual_seed(3))
    assert torch.equal(a, b)
    torch.manual_seed(4)
    c = gradext.gumbel_softmax(logits)
    torch.manual_seed(4)
    d = gradext.gumbel_softmax(logits)
    assert torch.equal(c, d)


def test_gumbel_max_frequencies_match_softmax(implementation, device):
    """Hard samples are exact Categorical(softmax(logits)) draws: chi-square goodness of fit
    per row (4 rows of random logits, 50k draws each), significance 1e-3 (Bonferroni over rows)."""
    g = torch.Generator().manual_seed(0)
    logits = (torch.randn(4, 10, generator=g) * 1.5).to(device)
    draws = 50_000
    batch = logits.unsqueeze(0).expand(draws, 4, 10)
    y = gradext.gumbel_softmax(
        batch, tau=1.0, hard=True, generator=torch.Generator(device=device).manual_seed(1)
    )
    counts = y.sum(0).double().cpu()
    probs = torch.softmax(logits.double(), -1).cpu()
    for row in range(4):
        p = chisquare_pvalue(counts[row], probs[row] * draws)
        assert p > 1e-3 / 4, (row, p)


def test_masked_categories_are_never_selected(implementation, device):
    logits = torch.randn(20_000, 6, device=device)
    logits[:, [1, 4]] = -math.inf
    y_hard = gradext.gumbel_softmax(logits, hard=True)
    y_soft = gradext.gumbel_softmax(logits, tau=0.1)
    assert y_hard[:, [1, 4]].sum() == 0 and torch.equal(
        y_hard.sum(-1), torch.ones(20_000, device=device)
    )
    assert torch.all(y_soft[:, [1, 4]] == 0) and torch.isfinite(y_soft).all()


@pytest.mark.parametrize("categories", [10, 40, 3000])
def test_ties_go_to_the_lowest_index(implementation, device, categories):
    """At logits of 1e9 the float32 spacing (64) swallows every Gumbel value (< 17), so the
    tied categories have equal scores: the one-hot is the first of them, as torch.argmax."""
    logits = torch.full((64, categories), -1e9, device=device)
    tied = [3, 9, categories - 1]
    logits[:, tied] = 1e9
    y_hard = gradext.gumbel_softmax(logits, hard=True)
    assert torch.equal(y_hard.argmax(-1), torch.full((64,), tied[0], device=device))
    assert torch.equal(y_hard.sum(-1), torch.ones(64, device=device))


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_never_nan_or_inf(implementation, device, dtype):
    """4M draws per dtype with ordinary, extreme and masked logits, soft at a small tau."""
    logits = torch.randn(1 << 18, 16, device=device) * 4
    logits[:, 0] = 1e4
    logits[:, 1] = -1e4
    logits[:, 2] = -math.inf
    logits = logits.to(dtype)
    for hard in (False, True):
        y = gradext.gumbel_softmax(logits, tau=0.05, hard=hard)
        assert torch.isfinite(y).all(), (dtype, hard)


def test_two_categories_and_very_long_rows(implementation, device):
    assert gradext.gumbel_softmax(torch.zeros(5, 2, device=device), hard=True).sum() == 5
    logits = torch.randn(3, 150_000, device=device)
    y = gradext.gumbel_softmax(logits, hard=True)
    assert torch.equal(y.sum(-1), torch.ones(3, device=device))


def test_empty_input(implementation, device):
    y = gradext.gumbel_softmax(torch.zeros(0, 5, device=device), hard=True)
    assert y.shape == (0, 5)


def test_signature_is_a_drop_in_for_torch():
    ours = inspect.signature(gradext.gumbel_softmax).parameters
    theirs = inspect.signature(F.gumbel_softmax).parameters
    for name, param in theirs.items():
        assert name in ours and ours[name].default == param.default, name
    assert ours["generator"].kind is inspect.Parameter.KEYWORD_ONLY


# ---- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("tau", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_tau(implementation, tau):
    with pytest.raises(ValueError, match=r"gumbel_softmax: tau must be a finite number > 0"):
        gradext.gumbel_softmax(torch.zeros(2, 3), tau=tau)


@pytest.mark.parametrize("name", ["gumbel_softmax", "gumbel_sigmoid"])
def test_tensor_tau_as_in_torch(implementation, name):
    """A one-element tensor tau works as in torch.nn.functional.gumbel_softmax: the same sample
    as the number; bad values are refused as for a number."""
    sample = getattr(gradext, name)
    logits = torch.randn(4, 5)
    by_tensor = sample(logits, tau=torch.tensor(0.5), generator=torch.Generator().manual_seed(2))
    by_number = sample(logits, tau=0.5, generator=torch.Generator().manual_seed(2))
    assert torch.equal(by_tensor, by_number)
    with pytest.raises(
        TypeError,
        match=rf"{name}: a tensor tau must hold one number, got "
        r"shape \(2,\)",
    ):
        sample(logits, tau=torch.tensor([0.5, 1.0]))
    with pytest.raises(ValueError, match=rf"{name}: tau must be a finite number > 0, got -1.0"):
        sample(logits, tau=torch.tensor(-1.0))


@pytest.mark.parametrize("name", ["gumbel_softmax", "gumbel_sigmoid"])
@pytest.mark.parametrize("hard", [False, True])
def test_learned_temperature_gets_its_gradient(implementation, name, hard):
    """A tau that requires grad (a learned temperature) gets d loss / d tau, equal to the plain
    PyTorch formula on the same noise, with the logits' gradient alongside."""
    sample = getattr(gradext, name)
    on_noise = getattr(reference, f"{name}_from_noise")
    noise = getattr(reference, "gumbel_noise" if name == "gumbel_softmax" else "logistic_noise")
    logits = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    log_tau = torch.tensor(-0.4, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(6, 5, dtype=torch.float64)

    y = sample(logits, tau=log_tau.exp(), hard=hard, generator=torch.Generator().manual_seed(4))
    got = torch.autograd.grad((weights * y).sum(), (logits, log_tau))
    # The pure-PyTorch path draws its noise from the generator the same way.
    g = noise(logits.shape, logits.dtype, logits.device, torch.Generator().manual_seed(4))
    y_expected = on_noise(logits, g, log_tau.exp(), hard)
    expected = torch.autograd.grad((weights * y_expected).sum(), (logits, log_tau))
    assert torch.equal(y, y_expected)
    for a, e in zip(got, expected):
        torch.testing.assert_close(a, e, rtol=1e-12, atol=1e-12)
    assert got[1].abs() > 0
    if not hard:  # the soft sample is smooth in tau: finite differences agree

        def soft_sample(t):
            return sample(logits.detach(), tau=t.exp(), generator=torch.Generator().manual_seed(4))

        assert torch.autograd.gradcheck(soft_sample, (log_tau,))


def test_integer_logits(implementation):
    with pytest.raises(
        TypeError, match=r"logits must be a floating-point tensor, got dtype torch.int64"
    ):
        gradext.gumbel_softmax(torch.zeros(2, 3, dtype=torch.long))


@pytest.mark.parametrize("dim", [2, -3])
def test_dim_out_of_range(implementation, dim):
    with pytest.raises(
        IndexError, match=rf"dim {dim} is out of range for logits with 2 dimensions"
    ):
        gradext.gumbel_softmax(torch.zeros(2, 3), dim=dim)


def test_meta_inputs_take_any_generator(implementation):
    meta = torch.zeros(2, 3, device="meta")
    y = gradext.gumbel_softmax(meta, generator=torch.Generator())
    assert y.device.type == "meta" and y.shape == (2, 3)


@requires_extension
def test_op_checks_tau_too():
    with pytest.raises(ValueError, match=r"tau must be a finite number > 0, got 0"):
        torch.ops.gradext.gumbel_softmax(torch.zeros(2, 3), tau_tensor(0.0), False)


@requires_extension
@pytest.mark.parametrize("categories", [3, 32, 3000])
def test_independent_of_thread_count(categories):
    from helpers.common import num_threads

    logits = torch.randn(40_000 // categories + 7, categories)
    results = []
    for threads in (1, 2, 3):
        with num_threads(threads):
            results.append(
                torch.ops.gradext._gumbel_softmax_seeded(logits, tau_tensor(0.7), True, 5, 0)
            )
    for y, soft in results[1:]:
        assert torch.equal(y, results[0][0]) and torch.equal(soft, results[0][1])

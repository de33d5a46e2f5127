"""categorical_sample: exact Gumbel-max draws (same noise as gumbel_softmax), frequencies by
chi-square, log-probabilities and their gradient, masked categories, reproducibility, errors,
fallback."""

from __future__ import annotations

import pytest
import torch

import gradext
from gradext import reference
from helpers.common import ALL_DTYPES, requires_extension, tau_tensor, tolerance
from helpers.stats import chisquare_pvalue


def _log_prob_reference(logits, index):
    """log_softmax(logits) at index, through plain autograd."""
    log_softmax = torch.log_softmax(logits.double(), -1)
    return (
        log_softmax.expand(index.shape[0], *logits.shape)
        .gather(-1, index.unsqueeze(-1))
        .squeeze(-1)
    )


@pytest.mark.parametrize(
    "batch, categories, num_samples",
    [
        ((), 2, 3),
        ((7,), 10, 1),
        ((3, 4), 33, 5),
        ((2,), 1500, 4),
        ((5,), 1, 2),
    ],
)
def test_shapes_log_prob_and_gradient(implementation, device, batch, categories, num_samples):
    logits = torch.randn(*batch, categories, dtype=torch.float64, device=device, requires_grad=True)
    index, log_prob = gradext.categorical_sample(logits, num_samples)
    assert index.shape == log_prob.shape == (num_samples, *batch)
    assert index.dtype == torch.int64 and log_prob.dtype == torch.float64
    assert ((index >= 0) & (index < categories)).all()
    expected = _log_prob_reference(logits, index)
    torch.testing.assert_close(log_prob, expected, **tolerance(torch.float64))
    grad = torch.randn_like(log_prob)
    (got,) = torch.autograd.grad(log_prob, logits, grad)
    (want,) = torch.autograd.grad(expected, logits, grad)
    torch.testing.assert_close(got, want, **tolerance(torch.float64))


@requires_extension
@pytest.mark.parametrize("categories", [2, 10, 1024, 3000])
def test_draws_are_gumbel_softmax_argmax(device, categories):
    """Sample s of row b uses the noise gumbel_softmax draws for row (s, b) of
    logits.expand(S, ...): the hard one-hot's argmax, for every sample."""
    logits = torch.randn(6, categories, device=device)
    _, index = torch.ops.gradext._categorical_sample_seeded(logits, 3, 11, 4)
    one_hot, _ = torch.ops.gradext._gumbel_softmax_seeded(
        logits.expand(3, 6, categories).contiguous(), tau_tensor(1.0), True, 11, 4
    )
    assert torch.equal(index, one_hot.argmax(-1))


@requires_extension
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_every_dtype_matches_reference_on_same_noise(device, dtype):
    logits = torch.randn(20, 9, device=device).to(dtype)
    log_prob, index = torch.ops.gradext._categorical_sample_seeded(logits, 4, 5, 0)
    assert log_prob.dtype == dtype
    uniforms = torch.ops.gradext._philox_uniform(logits.expand(4, 20, 9), 5, 0)
    gumbels = -torch.log(-torch.log(uniforms))
    expected_index, expected_log_prob = reference.categorical_sample_from_noise(logits, gumbels)
    assert torch.equal(index, expected_index)
    torch.testing.assert_close(log_prob.double(), expected_log_prob.double(), **tolerance(dtype))


@pytest.mark.parametrize("categories", [2, 10, 1500])
def test_frequencies_match_softmax(implementation, device, categories):
    """Pearson chi-square of the counts of 200000 draws (several rows) against softmax(logits):
    p > 1e-3 (categories with tiny expected counts are pooled into one cell)."""
    generator = torch.Generator(device=device).manual_seed(categories)
    logits = torch.randn(4, categories, generator=generator, device=device) * 1.5
    index, _ = gradext.categorical_sample(logits, 50000, generator=generator)
    probs = torch.softmax(logits.double(), -1).cpu()
    for row in range(logits.shape[0]):
        counts = torch.bincount(index[:, row].cpu(), minlength=categories).double()
        expected = probs[row] * index.shape[0]
        big = expected >= 5
        observed = torch.cat([counts[big], counts[~big].sum().view(1)])
        wanted = torch.cat([expected[big], expected[~big].sum().view(1)])
        if wanted[-1] == 0:
            observed, wanted = observed[:-1], wanted[:-1]
        p = chisquare_pvalue(observed, wanted)
        assert p > 1e-3, f"row {row}: chi-square p = {p:.2e}"


def test_masked_categories_are_never_drawn(implementation, device):
    logits = torch.randn(64, 12, device=device)
    logits[:, ::2] = -float("inf")
    logits.requires_grad_()
    index, log_prob = gradext.categorical_sample(logits, 200)
    assert (index % 2 == 1).all()
    assert torch.isfinite(log_prob).all()
    (grad,) = torch.autograd.grad(log_prob.sum(), logits)
    assert torch.isfinite(grad).all() and (grad[:, ::2] == 0).all()


@pytest.mark.parametrize("categories", [10, 40, 3000])
def test_ties_go_to_the_lowest_index(implementation, device, categories):
    """Equal scores (logits of 1e9 swallow the Gumbel noise in float32): the first of the tied
    categories is drawn, every time, as torch.argmax would pick it."""
    logits = torch.full((8, categories), -1e9, device=device)
    tied = [3, 9, categories - 1]
    logits[:, tied] = 1e9
    index, _ = gradext.categorical_sample(logits, num_samples=16)
    assert torch.equal(index, torch.full((16, 8), tied[0], device=device))


def test_reproducible(implementation, device):
    logits = torch.randn(30, 7, device=device)
    gen = lambda: torch.Generator(device=device).manual_seed(3)  # noqa: E731
    a, _ = gradext.categorical_sample(logits, 8, generator=gen())
    b, _ = gradext.categorical_sample(logits, 8, generator=gen())
    assert torch.equal(a, b)
    torch.manual_seed(9)
    c, _ = gradext.categorical_sample(logits, 8)
    torch.manual_seed(9)
    d, _ = gradext.categorical_sample(logits, 8)
    e, _ = gradext.categorical_sample(logits, 8)
    assert torch.equal(c, d) and not torch.equal(d, e)
    assert not all(torch.equal(c[0], c[s]) for s in range(1, 8))  # samples are independent


def test_empty_batch(implementation, device):
    logits = torch.randn(0, 5, device=device, requires_grad=True)
    index, log_prob = gradext.categorical_sample(logits, 3)
    assert index.shape == log_prob.shape == (3, 0)
    (grad,) = torch.autograd.grad(log_prob.sum(), logits)
    assert grad.shape == (0, 5)


def test_errors(implementation):
    logits = torch.randn(4, 3)
    with pytest.raises(
        TypeError,
        match=r"categorical_sample: logits must be a floating-point tensor, got dtype torch.int64",
    ):
        gradext.categorical_sample(logits.long())
    with pytest.raises(ValueError, match=r"num_samples must be >= 1, got 0"):
        gradext.categorical_sample(logits, 0)
    with pytest.raises(TypeError, match=r"num_samples must be an int, got None"):
        gradext.categorical_sample(logits, None)
    with pytest.raises(ValueError, match=r"logits must have at least one dimension"):
        gradext.categorical_sample(torch.tensor(1.0))
    with pytest.raises(ValueError, match=r"logits must have at least one category"):
        gradext.categorical_sample(torch.randn(3, 0))
    # Meta tensors draw nothing, so a CPU generator goes with them (torch cannot construct a
    # meta generator); a real device mismatch is tests/contracts/test_contract_errors.py's.
    index, _ = gradext.categorical_sample(logits.to("meta"), 2, generator=torch.Generator())
    assert index.device.type == "meta" and index.shape == (2, 4)

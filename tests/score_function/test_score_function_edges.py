"""The leave-one-out estimators at the edges of float range, on every path (fallback, each CPU
ISA variant, CUDA), against the definition evaluated in 50-digit arithmetic (mpmath):
L = log(mean_k exp(x_k)), signal_k = L - L_{-k}, L_{-k} with x_k replaced by the mean of the
others. Tolerances: 2e-5 absolute in float32, 1e-12 in float64 (the signals are O(1)); exact
zeros and infinities where the definition gives them."""

from __future__ import annotations

import math

import mpmath
import pytest
import torch

import gradext
from helpers.paths import every_path, on_path

INF = math.inf
TOLERANCE = {torch.float32: 2e-5, torch.float64: 1e-12}


@pytest.fixture(params=every_path())
def device(request):
    with on_path(request.param) as device:
        yield device


def _logmeanexp(values):
    finite = [mpmath.mpf(v) for v in values if v != -INF]
    if not finite:
        return -mpmath.inf
    top = max(finite)
    return top + mpmath.log(sum(mpmath.exp(v - top) for v in finite) / len(values))


def exact_vimco(log_weights):
    """(L, signals) of one datapoint by the definition, in 50 digits."""
    with mpmath.workdps(50):
        x = [float(v) for v in log_weights]
        K = len(x)
        bound = _logmeanexp(x)
        signals = []
        for k in range(K):
            others = [x[j] for j in range(K) if j != k]
            mean = -INF if -INF in others else mpmath.fsum(others) / (K - 1)
            replaced = x[:k] + [mean] + x[k + 1 :]
            signals.append(float(bound - _logmeanexp(replaced)))
        return float(bound), signals


def _vimco(log_weights, device):
    x = log_weights.to(device).unsqueeze(1).requires_grad_()
    log_prob = torch.zeros_like(x, requires_grad=True)
    bound = gradext.vimco(x, log_prob, dim=0)
    grad_x, grad_lp = torch.autograd.grad(bound.sum(), (x, log_prob))
    return bound.item(), grad_lp.squeeze(1).cpu(), grad_x.squeeze(1).cpu()


CASES = {
    "one -inf weight": [0.0, 1.0, -INF],
    "-inf first": [-INF, 0.5, 2.0, -1.0],
    "one finite weight": [-INF, 3.0, -INF],
    "dominant at -1e8": [-1e8, 0.0, 1.0],
    "all near -1e8, one dominant": [-1e8, -1e8 - 24.0, -1e8 - 40.0, -1e8 - 8.0],
    "far apart, -1e30": [-1e30, 1.0, 2.0, 0.5],
    "huge spread": [1e30, -1e30, 0.0],
    "largest +-1e4": [1e4, -1e4, 0.0, 3.0],
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", sorted(CASES))
def test_signals_match_the_definition(device, dtype, case):
    log_weights = torch.tensor(CASES[case], dtype=dtype)
    bound, signals, _ = _vimco(log_weights, device)
    want_bound, want = exact_vimco(log_weights.tolist())
    tolerance = TOLERANCE[dtype]
    for got, exact in zip(signals.tolist(), want):
        if math.isinf(exact):
            assert got == exact, (signals, want)
        else:
            assert abs(got - exact) <= tolerance * max(1.0, abs(exact)), (signals, want)
    assert bound == pytest.approx(want_bound, rel=tolerance, abs=tolerance)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("value", [1e10, 1e20, 3e38, -3e38])
def test_equal_log_weights_give_zero_signals(device, dtype, value):
    log_weights = torch.full((5,), value, dtype=dtype)
    bound, signals, grad_weights = _vimco(log_weights, device)
    assert torch.equal(signals, torch.zeros(5, dtype=dtype))
    assert bound == log_weights[0].item()
    assert torch.allclose(grad_weights, torch.full((5,), 0.2, dtype=dtype))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_no_finite_log_weight(device, dtype):
    bound, signals, grad_weights = _vimco(torch.full((3,), -INF, dtype=dtype), device)
    assert bound == -INF  # torch.logsumexp's value
    assert signals.isnan().all() and grad_weights.isnan().all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("bad, want_bound", [(math.nan, math.nan), (INF, INF)])
def test_nan_or_inf_log_weight_poisons_the_datapoint(device, dtype, bad, want_bound):
    log_weights = torch.tensor([0.0, bad, 1.0, -2.0], dtype=dtype)
    bound, signals, grad_weights = _vimco(log_weights, device)
    assert math.isnan(bound) if math.isnan(want_bound) else bound == want_bound
    assert signals.isnan().all()
    # The weights' gradient is torch.logsumexp's: all NaN for a NaN entry; NaN at a +inf
    # entry and 0 at the others.
    if math.isnan(bad):
        assert grad_weights.isnan().all()
    else:
        assert grad_weights[1].isnan() and (grad_weights[[0, 2, 3]] == 0).all()


def test_more_than_2_24_samples(device):
    """The argmax index is saved exactly past 2^24 (two 16-bit halves)."""
    K = 2**24 + 5
    log_weights = torch.zeros(K, dtype=torch.float32)
    log_weights[2**24 + 3] = 20.0  # the argmax, an odd index past 2^24
    _, signals, _ = _vimco(log_weights, device)
    # The argmax's mean of the others is 0, so L_{-i1} = 0 and its signal is L itself.
    want = math.log(K - 1 + math.exp(20.0)) - math.log(K)
    assert signals[2**24 + 3].item() == pytest.approx(want, rel=1e-5)
    others = torch.cat([signals[: 2**24 + 3], signals[2**24 + 4 :]])
    assert others.abs().max().item() < 0.05  # each far smaller than the argmax's


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_score_function_loo_with_an_infinite_reward(device, dtype):
    """The objective is inf (the mean of f), on the fallback too: its score term is zero in
    value even where the signal is infinite (no inf * 0)."""
    f = torch.tensor([[INF], [1.0], [2.0]], dtype=dtype, device=device)
    log_prob = torch.zeros_like(f, requires_grad=True)
    out = gradext.score_function_loo(f, log_prob)
    assert out.item() == INF
    (grad,) = torch.autograd.grad(out.sum(), log_prob)
    assert grad[0].isnan().all() and (grad[1:] == -INF).all()

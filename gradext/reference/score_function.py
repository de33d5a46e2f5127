"""Score-function (REINFORCE) estimators with leave-one-out baselines in plain PyTorch.

Each estimator returns a surrogate whose value is the Monte Carlo objective and whose gradient
is the estimator: the score term is ``signal * (log_prob - log_prob.detach())``, zero in value,
``signal`` in gradient. Everything is O(K) per datapoint (no K x K expansion), the way a careful
user writes it, and numerically stable at extreme log weights.
"""

from __future__ import annotations

import math

import torch


class _ScoreTerm(torch.autograd.Function):
    """Zero in value, ``signal`` times the incoming gradient for log_prob. A Function rather
    than ``signal * (log_prob - log_prob.detach())``, whose value is inf * 0 = NaN where a
    signal is infinite (VIMCO's argmax sample when every other log weight is -inf) or a reward
    is (score_function_loo), where the kernels' value stays the objective. The backward is
    written in torch ops, so gradients of gradients see it (the signal is a constant)."""

    @staticmethod
    def forward(ctx, signal, log_prob):
        ctx.save_for_backward(signal)
        return torch.zeros_like(log_prob)

    @staticmethod
    def backward(ctx, grad):
        (signal,) = ctx.saved_tensors
        return None, grad * signal


class _ScoreTermForTransforms(torch.autograd.Function):
    """The same in the style torch.func requires (setup_context apart, a generated vmap rule);
    it binds its arguments with inspect.signature per apply, so plain eager mode uses the
    other."""

    generate_vmap_rule = True

    @staticmethod
    def forward(signal, log_prob):
        return torch.zeros_like(log_prob)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, grad):
        (signal,) = ctx.saved_tensors
        return None, grad * signal


def _score_term(signal: torch.Tensor, log_prob: torch.Tensor) -> torch.Tensor:
    """Zero in value; its gradient with respect to log_prob is ``signal``."""
    signal = signal.to(log_prob.dtype)
    if torch._C._are_functorch_transforms_active():
        return _ScoreTermForTransforms.apply(signal, log_prob)
    return _ScoreTerm.apply(signal, log_prob)


def _math_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.promote_types(dtype, torch.float32)


def score_function_loo(f: torch.Tensor, log_prob: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Same contract as gradext.score_function_loo: the mean of f over dim, with the RLOO
    gradient (f_k - b_k) / K for log_prob[k], b_k the mean of the other K - 1 values of f."""
    K = f.shape[dim]
    f_const = f.detach().to(_math_dtype(f.dtype))
    # f_k - b_k = K / (K - 1) * (f_k - mean f): one reduction instead of K - 1 sums.
    advantage = (f_const - f_const.mean(dim, keepdim=True)) * (K / (K - 1))
    score = _score_term(advantage / K, log_prob).sum(dim)
    return f.mean(dim) + score.to(f.dtype)


def score_function_loo_masked(
    f: torch.Tensor, log_prob: torch.Tensor, valid: torch.Tensor, dim: int
) -> torch.Tensor:
    """RLOO over the valid samples of each group only (gradext.score_function_loo with a mask,
    and with K = 1): the value is the mean of f over the valid samples (0 where a group has
    none), and a valid log_prob[k] gets (f_k - b_k) / n, b_k the mean of the group's other n - 1
    valid values; 0 where n = 1 (no other sample to compare with: a zero advantage, as TRL
    gives a group of one) and for every invalid sample, whose f (NaN, say) is never read."""
    math_dtype = _math_dtype(f.dtype)
    f_const = torch.where(valid, f.detach().to(math_dtype), 0.0)
    n = valid.sum(dim, keepdim=True).to(math_dtype)
    n_or_one = n.clamp_min(1)
    mean = f_const.sum(dim, keepdim=True) / n_or_one
    # f_k - b_k = n / (n - 1) * (f_k - mean f), as the unmasked estimator computes it.
    advantage = (f_const - mean) * (n / (n - 1).clamp_min(1))
    advantage = torch.where(valid & (n > 1), advantage, 0.0)
    score = _score_term(advantage / n_or_one, log_prob).sum(dim)
    value = torch.where(valid, f, torch.zeros_like(f)).sum(dim) / n_or_one.squeeze(dim).to(f.dtype)
    return value + score.to(f.dtype)


def _sum_of_others(values: torch.Tensor, dim: int) -> torch.Tensor:
    """sum_{j != k} values_j for every k, as a sum of the samples before k and those after it:
    no "total minus self", whose rounding grows with values_k (a log weight of -1e8 would
    absorb all the others)."""
    K = values.shape[dim]
    zero = torch.zeros_like(values.narrow(dim, 0, 1))
    before = torch.cat([zero, values.narrow(dim, 0, K - 1).cumsum(dim)], dim)
    after = torch.cat([values.narrow(dim, 1, K - 1).flip(dim).cumsum(dim).flip(dim), zero], dim)
    return before + after


def vimco_signal(log_weights: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """The VIMCO learning signals L - L_{-k} (no gradient), stably in O(K) at any finite log
    weights: the leave-one-out means enter only relative to the largest log weight m1 (and, for
    the largest itself, to the second largest m2), summed without the sample's own term.
    Edges as the kernels give them (csrc/common/leave_one_out.h): a -inf log weight joins no
    mean and makes every other sample's mean -inf; the argmax's signal is +inf when it is the
    only finite one; a NaN or +inf log weight makes the datapoint's signals NaN."""
    x = log_weights.detach().to(_math_dtype(log_weights.dtype))
    K = x.shape[dim]
    minus_inf = x == -math.inf
    top2, top2_index = x.topk(2, dim)
    m1, m2 = top2.narrow(dim, 0, 1), top2.narrow(dim, 1, 1)
    i1 = top2_index.narrow(dim, 0, 1)
    # The argmax sample's mask by a comparison (vmap has a batching rule for it; not for an
    # in-place scatter).
    sample_axis = [1] * x.dim()
    sample_axis[dim] = K
    is_max = torch.arange(K, device=x.device).view(sample_axis) == i1
    masked_elsewhere = (minus_inf.sum(dim, keepdim=True) - minus_inf.to(torch.int64)) > 0
    others = _sum_of_others((x - m1).masked_fill(minus_inf, 0.0), dim)
    w_tilde = torch.exp(others / (K - 1)).masked_fill(masked_elsewhere, 0.0)
    w = torch.exp(x - m1)
    s1 = w.sum(dim, keepdim=True)
    signal = torch.log(s1) - torch.log((s1 - w) + w_tilde)
    # The argmax relative to m2: the others' mean, and their weights.
    around_second = (x - m2).masked_fill(minus_inf | is_max, 0.0).sum(dim, keepdim=True)
    w_tilde_max = torch.exp(around_second / (K - 1)).masked_fill(minus_inf.any(dim, True), 0.0)
    s2 = torch.exp(x.masked_fill(is_max, -math.inf) - m2).sum(dim, keepdim=True)
    signal_max = (m1 - m2) + torch.log(s1) - torch.log(s2 + w_tilde_max)
    signal_max = signal_max.masked_fill(m2 == -math.inf, math.inf)
    signal_max = signal_max.masked_fill(m1 == -math.inf, math.nan)  # no finite log weight
    signal = signal.scatter(dim, i1, signal_max)
    poisoned = (x.isnan() | (x == math.inf)).any(dim, keepdim=True)
    return signal.masked_fill(poisoned, math.nan)


def _log_sum_exp(x: torch.Tensor, dim: int) -> torch.Tensor:
    """torch.logsumexp relative to a detached, finite maximum m. torch's backward, exp(x -
    result), loses the softmax where result rounds back to max x (equal log weights of 1e10 in
    float32 get gradient 1 each, not 1/K); on x - m it does not. Values and gradients at -inf,
    +inf and NaN entries are torch.logsumexp's."""
    m = x.detach().amax(dim, keepdim=True)
    m = torch.where(m.isfinite(), m, torch.zeros_like(m))
    return m.squeeze(dim) + torch.logsumexp(x - m, dim)


def vimco(log_weights: torch.Tensor, log_prob: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Same contract as gradext.vimco: L = logsumexp(log_weights, dim) - log K, with gradient
    softmax(log_weights) for log_weights and L - L_{-k} for log_prob[k]."""
    K = log_weights.shape[dim]
    bound = _log_sum_exp(log_weights, dim) - math.log(K)
    score = _score_term(vimco_signal(log_weights, dim), log_prob).sum(dim)
    return bound + score.to(bound.dtype)

"""Score-function (REINFORCE) estimators with leave-one-out baselines in plain PyTorch.

Each estimator returns a surrogate whose value is the Monte Carlo objective and whose gradient
is the estimator: the score term is ``signal * (log_prob - log_prob.detach())``, zero in value,
``signal`` in gradient. Everything is O(K) per datapoint (no K x K expansion), the way a careful
user writes it, and numerically stable at extreme log weights.
"""

from __future__ import annotations

import math

import torch


def _score_term(signal: torch.Tensor, log_prob: torch.Tensor) -> torch.Tensor:
    """Zero in value; its gradient with respect to log_prob is ``signal``."""
    return signal.to(log_prob.dtype) * (log_prob - log_prob.detach())


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


def vimco_signal(log_weights: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """The VIMCO learning signals L - L_{-k} (no gradient), stably in O(K): relative to the
    largest log weight, and for the largest one itself relative to the second largest, where the
    subtraction S - w_k would cancel (see csrc/common/leave_one_out.h)."""
    x = log_weights.detach().to(_math_dtype(log_weights.dtype))
    K = x.shape[dim]
    top2, top2_index = x.topk(2, dim)
    m1, m2 = top2.narrow(dim, 0, 1), top2.narrow(dim, 1, 1)
    i1 = top2_index.narrow(dim, 0, 1)
    mean_others = (x.sum(dim, keepdim=True) - x) / (K - 1)
    w = torch.exp(x - m1)
    s1 = w.sum(dim, keepdim=True)
    w_tilde = torch.exp(mean_others - m1)
    signal = torch.log1p((w - w_tilde) / (s1 - w + w_tilde))
    # The argmax sample's mask by a comparison (vmap has a batching rule for it; not for an
    # in-place scatter).
    sample_axis = [1] * x.dim()
    sample_axis[dim] = K
    is_max = torch.arange(K, device=x.device).view(sample_axis) == i1
    s2 = torch.exp(x.masked_fill(is_max, -math.inf) - m2).sum(dim, keepdim=True)
    rest = s2 + torch.exp(mean_others.gather(dim, i1) - m2)
    signal_max = (m1 - m2) + torch.log(s1) - torch.log(rest)
    return signal.scatter(dim, i1, signal_max)


def vimco(log_weights: torch.Tensor, log_prob: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Same contract as gradext.vimco: L = logsumexp(log_weights, dim) - log K, with gradient
    softmax(log_weights) for log_weights and L - L_{-k} for log_prob[k]."""
    K = log_weights.shape[dim]
    bound = torch.logsumexp(log_weights, dim) - math.log(K)
    score = _score_term(vimco_signal(log_weights, dim), log_prob).sum(dim)
    return bound + score.to(bound.dtype)

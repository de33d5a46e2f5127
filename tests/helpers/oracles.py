"""Independent float64 oracles for the leave-one-out estimators: every baseline and every
L_{-k} is built explicitly from a K x K leave-one-out mask (O(K^2), no algebraic shortcut), so
they share nothing with the O(K) formulas of the kernels and the reference module."""

from __future__ import annotations

import math

import torch


def _leave_one_out_mask(K: int, device) -> torch.Tensor:
    """mask[k, j] = 1 for j != k."""
    return 1.0 - torch.eye(K, dtype=torch.float64, device=device)


def rloo_log_prob_grad(f: torch.Tensor, grad: torch.Tensor, dim: int) -> torch.Tensor:
    """d/d log_prob[k] = grad * (f_k - b_k) / K, b_k = sum_{j != k} f_j / (K - 1)."""
    x = f.detach().double().movedim(dim, -1)  # [..., K]
    K = x.shape[-1]
    baseline = (x.unsqueeze(-2) * _leave_one_out_mask(K, x.device)).sum(-1) / (K - 1)
    g = grad.double().unsqueeze(-1)
    return ((x - baseline) / K * g).movedim(-1, dim)


def vimco_bound(log_weights: torch.Tensor, dim: int) -> torch.Tensor:
    x = log_weights.detach().double()
    return torch.logsumexp(x, dim) - math.log(x.shape[dim])


def vimco_gradients(log_weights: torch.Tensor, grad: torch.Tensor, dim: int):
    """(d log_weights, d log_prob) of VIMCO, with each L_{-k} from its own modified vector."""
    x = log_weights.detach().double().movedim(dim, -1)  # [..., K]
    K = x.shape[-1]
    g = grad.double().unsqueeze(-1)
    bound = torch.logsumexp(x, -1, keepdim=True) - math.log(K)
    mask = _leave_one_out_mask(K, x.device)
    mean_others = (x.unsqueeze(-2) * mask).sum(-1) / (K - 1)  # [..., K]
    # Row k of `replaced` is x with entry k replaced by mean_others[k].
    eye = torch.eye(K, dtype=torch.bool, device=x.device)
    replaced = torch.where(eye, mean_others.unsqueeze(-1), x.unsqueeze(-2))  # [..., K, K]
    bound_without = torch.logsumexp(replaced, -1) - math.log(K)
    grad_log_prob = (bound - bound_without) * g
    grad_log_weights = torch.softmax(x, -1) * g
    return grad_log_weights.movedim(-1, dim), grad_log_prob.movedim(-1, dim)

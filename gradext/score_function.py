"""Score-function (REINFORCE) gradients for latents that cannot be reparameterized: multi-sample
estimators with leave-one-out baselines (RLOO, VIMCO) and the fused Gumbel-max sampler that
draws the discrete samples and their log-probabilities.

Typical use, with K samples per datapoint along dim 0::

    index, log_prob = gradext.categorical_sample(logits, num_samples=K)   # [K, B]
    f = reward(index)                                                     # [K, B]
    objective = gradext.score_function_loo(f, log_prob)                   # [B], mean of f
    (-objective.sum()).backward()   # d logits: the RLOO estimator, baseline for free
"""

from __future__ import annotations

import torch

from gradext import _extension, _ops, _validation
from gradext import reference


def _check_samples(op: str, values_name: str, values, other_name: str, other, dim) -> int:
    """Validates a (values, log_prob) pair with K >= 2 samples along dim; returns K."""
    _validation.check_floating(op, values_name, values)
    _validation.check_floating(op, other_name, other)
    if values.shape != other.shape:
        raise ValueError(
            f"{op}: {values_name} of shape {tuple(values.shape)} and {other_name} of shape "
            f"{tuple(other.shape)} must have the same shape"
        )
    _validation.check_same_device(op, **{values_name: values, other_name: other})
    if values.dim() == 0:
        raise ValueError(f"{op}: {values_name} must have at least one dimension (the samples)")
    _validation.check_dim(op, dim, values_name, values)
    K = values.shape[dim]
    if K < 2:
        raise ValueError(
            f"{op}: needs K >= 2 samples along dim {dim} of {values_name} (a leave-one-out "
            f"baseline needs another sample), got K = {K}"
        )
    return K


def score_function_loo(f: torch.Tensor, log_prob: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """REINFORCE with the leave-one-out baseline (RLOO; Kool et al. 2019).

    Args:
        f: the objective's values for K >= 2 samples along ``dim``. If f requires grad (a
            pathwise part), it gets the plain gradient of the mean; in the score term it is a
            constant.
        log_prob: log q(z_k), same shape, carrying the graph to q's parameters.
        dim: the sample axis (anywhere).

    Returns:
        The sample mean of f over ``dim`` (the Monte Carlo estimate of the objective). Its
        gradient with respect to log_prob[k] is grad * (f_k - b_k) / K, with the unbiased
        baseline b_k = (sum_j f_j - f_k) / (K - 1), computed as grad * (f_k - mean f) / (K - 1).

    One fused kernel each way; backward keeps only f (no per-sample intermediates) and hands f
    its gradient as a broadcast view (no K-sized write).
    """
    op = "score_function_loo"
    _check_samples(op, "f", f, "log_prob", log_prob, dim)
    if not _extension.uses_kernels(f.device):
        return reference.score_function_loo(f, log_prob, dim)
    return _ops.score_function.score_function_loo(f, log_prob, dim)


def vimco(log_weights: torch.Tensor, log_prob: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """The K-sample bound with VIMCO's leave-one-out learning signals (Mnih and Rezende 2016).

    Args:
        log_weights: log w_k = log p(x, z_k) - log q(z_k) for K >= 2 samples along ``dim``,
            with its pathwise graph.
        log_prob: log q(z_k), same shape, carrying the graph to q's parameters.
        dim: the sample axis.

    Returns:
        L = logsumexp(log_weights, dim) - log K. Gradients: softmax(log_weights, dim) * grad for
        log_weights; (L - L_{-k}) * grad for log_prob[k], where L_{-k} is L with log w_k replaced
        by the mean of the other K - 1 log weights.

    O(K) per datapoint and stable at any finite log weights (no exp overflows at +-1e4, no
    cancellation when one weight dominates; csrc/common/leave_one_out.h has the algebra). The
    forward keeps 5 scalars per datapoint so that the backward reads the log weights once.
    """
    op = "vimco"
    _check_samples(op, "log_weights", log_weights, "log_prob", log_prob, dim)
    if not _extension.uses_kernels(log_weights.device):
        return reference.vimco(log_weights, log_prob, dim)
    bound, _ = _ops.score_function.vimco(log_weights, log_prob, dim)
    return bound


def categorical_sample(
    logits: torch.Tensor, num_samples: int = 1, *, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact Categorical(softmax(logits)) samples along the last dim, by Gumbel-max.

    Returns:
        (index, log_prob): index int64 of shape (num_samples, *logits.shape[:-1]);
        log_prob = log_softmax(logits)[index], differentiable with respect to logits (d logits
        = one_hot(index) - softmax(logits), times grad). This is the sampling half of a discrete
        score-function estimator; feed log_prob to score_function_loo or vimco.

    One fused kernel draws the Gumbel noise (the same noise code and stream layout as
    gumbel_softmax: with num_samples=1 and the same seed, index is gumbel_softmax(hard=True)'s
    argmax), takes the argmax and the log-normalizer; backward recomputes the softmax from the
    logits. Logits of -inf are never drawn while one category of the row is finite.
    """
    op = "categorical_sample"
    _validation.check_floating(op, "logits", logits)
    if logits.dim() == 0:
        raise ValueError(f"{op}: logits must have at least one dimension (the categories)")
    if logits.shape[-1] == 0:
        raise ValueError(f"{op}: logits must have at least one category, got shape {tuple(logits.shape)}")
    _validation.check_count(op, "num_samples", num_samples)
    _validation.check_generator(op, generator, logits.device)
    if not _extension.uses_kernels(logits.device):
        return reference.categorical_sample(logits, num_samples, generator=generator)
    log_prob, index = _ops.score_function.categorical_sample(logits, num_samples, generator=generator)
    return index, log_prob

"""Gumbel-max categorical sampling in plain PyTorch."""

from __future__ import annotations

import math

import torch

from gradext.reference.relaxed import gumbel_noise


def categorical_sample_from_noise(
    logits: torch.Tensor, gumbels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gumbel-max: index = argmax(logits + g) along the last dim for each of the
    gumbels.shape[0] samples; log_prob = log_softmax(logits) at index (differentiable)."""
    num_samples = gumbels.shape[0]
    math_dtype = torch.promote_types(logits.dtype, torch.float32)
    index = (logits.detach().to(math_dtype) + gumbels.to(math_dtype)).argmax(-1)
    log_softmax = torch.log_softmax(logits.to(math_dtype), -1)
    # A row with a NaN, a +inf or no finite logit defines no distribution: index 0 and a NaN
    # log_prob, as on the kernels (csrc/common/invalid_inputs.h).
    invalid = log_softmax.detach().isnan().any(-1)
    index = index.masked_fill(invalid, 0)
    log_prob = log_softmax.expand(num_samples, *logits.shape).gather(-1, index.unsqueeze(-1))
    log_prob = log_prob.squeeze(-1).masked_fill(invalid, math.nan)
    return index, log_prob.to(logits.dtype)


def categorical_sample(
    logits: torch.Tensor, num_samples: int = 1, *, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Same contract as gradext.categorical_sample."""
    gumbels = gumbel_noise((num_samples, *logits.shape), logits.dtype, logits.device, generator)
    return categorical_sample_from_noise(logits, gumbels)

"""One function of a [3, 4] input through each public op (fixed seeds), for the tests that
run every op the same way: dtypes of second derivatives, torch.func transforms."""

from __future__ import annotations

import torch

import gradext

OPS = ["gaussian_rsample", "gumbel_softmax", "gumbel_sigmoid", "score_function_loo", "vimco",
       "categorical_sample"]


def _seeded():
    return torch.Generator().manual_seed(7)


def function_through(name):
    """x -> the op's differentiable output for op `name`; the same noise on every call."""
    return {
        "gaussian_rsample":
            lambda x: gradext.gaussian_rsample(x, 0.5 * x, 2, generator=_seeded()),
        "gumbel_softmax": lambda x: gradext.gumbel_softmax(x, hard=True, generator=_seeded()),
        "gumbel_sigmoid": lambda x: gradext.gumbel_sigmoid(x, generator=_seeded()),
        "score_function_loo": lambda x: gradext.score_function_loo(x * x, x),
        "vimco": lambda x: gradext.vimco(2 * x, x),
        "categorical_sample": lambda x: gradext.categorical_sample(x, 2, generator=_seeded())[1],
    }[name]

"""Gumbel-max categorical sampling: eager PyTorch (gradext.reference.categorical_sample), its
torch.compile and gradext.categorical_sample, forward and forward+backward (of the drawn
log-probabilities), short rows with many draws and long rows with few, CPU and CUDA.

    python -m gradext.bench.categorical [--device cpu|cuda|all] [--quick]

Prints a markdown table; writes benchmarks/results/categorical_<device>.{csv,md}. No speed
target: the sampler feeds the score-function estimators, whose targets are theirs.
"""

from __future__ import annotations

import sys

import torch

import gradext
from gradext import reference
from gradext.bench import harness

torch._dynamo.config.cache_size_limit = 64


def categorical_cases(device: torch.device, quick: bool):
    """(rows, categories, num_samples)."""
    if device.type == "cuda":
        full = [(1 << 16, 10, 16), (1 << 10, 32768, 4)]
    else:
        full = [(4096, 10, 16), (16, 32768, 4)]
    return full[:1] if quick else full


def measure(device: torch.device, quick: bool) -> list[harness.Measurement]:
    rows = []
    impls = {
        "eager": reference.categorical_sample,
        "compile": torch.compile(reference.categorical_sample),
        "gradext": gradext.categorical_sample,
    }
    for B, C, S in categorical_cases(device, quick):
        logits = torch.randn(B, C, device=device, requires_grad=True)
        grad_out = torch.randn(S, B, device=device)
        rows += harness.time_modes(
            "categorical_sample",
            f"[{B}, {C}] x {S}",
            {name: (lambda fn=fn: fn(logits, S)[1]) for name, fn in impls.items()},
            (logits,),
            grad_out,
            device,
        )
    return rows


def report_targets(rows, device: torch.device) -> list[str]:
    return []


if __name__ == "__main__":
    sys.exit(harness.main("categorical", __doc__.splitlines()[0], measure, report_targets))

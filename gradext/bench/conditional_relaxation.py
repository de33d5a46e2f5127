"""REBAR's primitive: the plain-PyTorch construction of (b, soft, soft_cond) (the reference
formulas on torch.rand noise) vs its torch.compile vs gradext.conditional_relaxation, forward and
forward+backward (gradients of both relaxations), Bernoulli and categorical, CPU and CUDA.

    python -m gradext.bench.conditional_relaxation [--device cpu|cuda|all] [--quick]

Prints a markdown table and the speed targets; writes
benchmarks/results/conditional_relaxation_<device>.{csv,md}.
"""

from __future__ import annotations

import sys

import torch

import gradext
from gradext import reference
from gradext.bench import harness

TAU = 0.5


def eager(logits, categorical):
    _, soft, soft_cond = reference.conditional_relaxation(logits, TAU, categorical=categorical)
    return soft, soft_cond


def fused(logits, categorical):
    _, soft, soft_cond = gradext.conditional_relaxation(logits, TAU, categorical=categorical)
    return soft, soft_cond


def cases(device: torch.device, quick: bool):
    """(shape, categorical): the targets' [4096, 200] Bernoulli latents and [4096, 20, 10]
    categorical ones, and a discrete VAE's minibatch [128, 20, 10]."""
    targets = [((4096, 200), False), ((4096, 20, 10), True)]
    if device.type == "cuda":
        targets += [((1 << 16, 200), False), ((1 << 16, 20, 10), True)]
    return targets if quick else [((128, 20, 10), True), *targets]


def bytes_moved(numel, mode):
    forward = 4 * numel * 4  # read logits; write b, soft, soft_cond
    backward = 4 * numel * 4  # read both gradients and logits; write grad_logits
    return forward if mode == "forward" else forward + backward


def measure(device: torch.device, quick: bool) -> list[harness.Measurement]:
    compiled = torch.compile(eager)
    impls = {"eager": eager, "compile": compiled, "gradext": fused}
    rows = []
    for shape, categorical in cases(device, quick):
        logits = torch.randn(shape, device=device, requires_grad=True)
        grad_out = (torch.randn(shape, device=device), torch.randn(shape, device=device))
        kind = "categorical" if categorical else "Bernoulli"
        numel = logits.numel()
        case = f"{list(shape)} {kind}"
        rows += harness.time_modes(
            "conditional_relaxation",
            case,
            {n: (lambda fn=fn, c=categorical: fn(logits, c)) for n, fn in impls.items()},
            (logits,),
            grad_out,
            device,
            lambda mode, n=numel: bytes_moved(n, mode),
        )
    return rows


def report_targets(rows, device: torch.device) -> list[str]:
    target = 4.0 if device.type == "cpu" else 3.0
    return harness.speed_targets(rows, device, target)


if __name__ == "__main__":
    sys.exit(
        harness.main("conditional_relaxation", __doc__.splitlines()[0], measure, report_targets)
    )

"""Gumbel-Softmax: eager F.gumbel_softmax vs its torch.compile vs gradext.gumbel_softmax, soft
and hard, forward and forward+backward, rows of 2 to 32k+ categories, CPU and CUDA.

    python -m gradext.bench.relaxed [--device cpu|cuda|all] [--quick]

Prints a markdown table and the speed targets; writes
benchmarks/results/relaxed_<device>.{csv,md}.
"""

from __future__ import annotations

import sys

import torch
import torch.nn.functional as F

import gradext
from gradext.bench import harness

torch._dynamo.config.cache_size_limit = 64


def eager(logits, hard):
    return F.gumbel_softmax(logits, tau=0.5, hard=hard)


def fused(logits, hard):
    return gradext.gumbel_softmax(logits, tau=0.5, hard=hard)


def cases(device: torch.device, quick: bool):
    """(rows, categories). The first is a discrete VAE's minibatch (128 datapoints x 20 latent
    variables of 10 classes), where fixed per-call costs (Python, kernel launches) dominate."""
    minibatch = (128 * 20, 10)
    if device.type == "cuda":
        full = [(1 << 20, 2), (1 << 20, 10), (1 << 20, 32), (1 << 15, 1024), (64, 151_936)]
    else:
        full = [(32768, 2), (32768, 10), (32768, 32), (1024, 1024), (8, 32768)]
    return full[2:3] if quick else [minibatch, *full]


def bytes_moved(rows, categories, hard, mode):
    n = rows * categories * 4
    forward = n * (3 if hard else 2)  # read logits; write y (and y_soft)
    backward = 3 * n  # read grad, y_soft; write grad_logits
    return forward if mode == "forward" else forward + backward


def measure(device: torch.device, quick: bool) -> list[harness.Measurement]:
    compiled = torch.compile(eager)
    impls = {"eager": eager, "compile": compiled, "gradext": fused}
    rows_out = []
    for rows, categories in cases(device, quick):
        logits = torch.randn(rows, categories, device=device, requires_grad=True)
        grad_out = torch.randn(rows, categories, device=device)
        for hard in (False, True):
            case = f"[{rows}, {categories}] {'hard' if hard else 'soft'}"
            rows_out += harness.time_modes(
                "gumbel_softmax",
                case,
                {name: (lambda fn=fn, hard=hard: fn(logits, hard)) for name, fn in impls.items()},
                (logits,),
                grad_out,
                device,
                lambda mode, r=rows, c=categories, h=hard: bytes_moved(r, c, h, mode),
            )
    return rows_out


def report_targets(rows, device: torch.device) -> list[str]:
    ratio = harness.speedups(rows)
    lines = []
    if device.type == "cpu":
        key = ("gumbel_softmax", "[32768, 32] hard", "forward+backward")
        if key + ("gradext",) in ratio:
            r = ratio[key + ("gradext",)]
            lines.append(
                f"{'PASS' if r >= 8 else 'MISS'}  CPU hard fwd+bwd [32768, 32]: "
                f"{r:.2f}x eager (target >= 8x)"
            )
    else:
        for case in ("[1048576, 32] hard", "[1048576, 32] soft"):
            key = ("gumbel_softmax", case, "forward+backward")
            if key + ("gradext",) not in ratio:
                continue
            r = ratio[key + ("gradext",)]
            vs_compile = r / ratio[key + ("compile",)]
            lines.append(
                f"{'PASS' if r >= 4 else 'MISS'}  CUDA fwd+bwd {case}: {r:.2f}x eager "
                "(target >= 4x)"
            )
            lines.append(
                f"{'PASS' if vs_compile >= 1.3 else 'MISS'}  CUDA fwd+bwd {case}: "
                f"{vs_compile:.2f}x torch.compile (target >= 1.3x)"
            )
    return lines


if __name__ == "__main__":
    sys.exit(harness.main("relaxed", __doc__.splitlines()[0], measure, report_targets))

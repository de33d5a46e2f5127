"""Score-function estimators: eager PyTorch (gradext.reference: O(K) leave-one-out sums), its
torch.compile and gradext, for score_function_loo (RLOO) and vimco, forward and forward+backward,
K in {2, 8, 16, 64} samples and up to 2^20 datapoints, CPU and CUDA.

    python -m gradext.bench.score_function [--device cpu|cuda|all] [--quick]

Prints a markdown table and the speed targets; writes
benchmarks/results/score_function_<device>.{csv,md}.
"""

from __future__ import annotations

import sys

import torch

import gradext
from gradext import reference
from gradext.bench import harness

torch._dynamo.config.cache_size_limit = 64

ESTIMATORS = {
    "score_function_loo": (reference.score_function_loo, gradext.score_function_loo),
    "vimco": (reference.vimco, gradext.vimco),
}
TARGET_CASE = "K=16, N=65536"


def estimator_cases(device: torch.device, quick: bool):
    """(K, N): K samples for each of N datapoints, samples leading ([K, N], dim=0). The first is
    a minibatch of 128 datapoints, where fixed per-call costs dominate."""
    minibatch = (8, 128)
    if device.type == "cuda":
        full = [(2, 1 << 20), (8, 1 << 20), (16, 1 << 20), (64, 1 << 20)]
    else:
        full = [(2, 1 << 18), (8, 1 << 17), (16, 1 << 16), (64, 1 << 14)]
    return full[2:3] if quick else [minibatch, *full]


def estimator_bytes(K, N, op, mode):
    n = K * N * 4
    forward = n + N * 4  # read the samples, write the result
    backward = N * 4 + n + (n if op == "score_function_loo" else 2 * n)  # grad, samples, writes
    return forward if mode == "forward" else forward + backward


def measure(device: torch.device, quick: bool) -> list[harness.Measurement]:
    rows = []
    for op, (eager, fused) in ESTIMATORS.items():
        impls = {"eager": eager, "compile": torch.compile(eager), "gradext": fused}
        for K, N in estimator_cases(device, quick):
            values = torch.randn(K, N, device=device, requires_grad=True)
            log_prob = torch.randn(K, N, device=device, requires_grad=True)
            grad_out = torch.randn(N, device=device)
            rows += harness.time_modes(
                op,
                f"K={K}, N={N}",
                {name: (lambda fn=fn: fn(values, log_prob, 0)) for name, fn in impls.items()},
                (values, log_prob),
                grad_out,
                device,
                lambda mode, K=K, N=N, op=op: estimator_bytes(K, N, op, mode),
            )
    return rows


def report_targets(rows, device: torch.device) -> list[str]:
    ratio = harness.speedups(rows)
    lines = []
    case = TARGET_CASE if device.type == "cpu" else "K=16, N=1048576"
    need = 5 if device.type == "cpu" else 3
    for op in ESTIMATORS:
        key = (op, case, "forward+backward", "gradext")
        if key in ratio:
            r = ratio[key]
            lines.append(
                f"{'PASS' if r >= need else 'MISS'}  {device.type.upper()} {op} "
                f"fwd+bwd {case}: {r:.2f}x eager (target >= {need}x)"
            )
    return lines


if __name__ == "__main__":
    sys.exit(harness.main("score_function", __doc__.splitlines()[0], measure, report_targets))

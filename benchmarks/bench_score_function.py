"""Score-function estimators: eager PyTorch (gradext.reference: O(K) leave-one-out sums), its
torch.compile and gradext, for score_function_loo (RLOO), vimco and categorical_sample, forward
and forward+backward, K in {2, 8, 16, 64} samples and up to 2^20 datapoints, CPU and CUDA.

    python benchmarks/bench_score_function.py [--device cpu|cuda|all] [--quick]

Prints a markdown table and the issue's speed targets; writes
benchmarks/results/score_function_<device>.{csv,md}.
"""

from __future__ import annotations

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import gradext  # noqa: E402
from gradext import reference  # noqa: E402
from benchmarks import harness  # noqa: E402

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


def categorical_cases(device: torch.device, quick: bool):
    """(rows, categories, num_samples)."""
    if device.type == "cuda":
        full = [(1 << 16, 10, 16), (1 << 10, 32768, 4)]
    else:
        full = [(4096, 10, 16), (16, 32768, 4)]
    return full[:1] if quick else full


def estimator_bytes(K, N, op, mode):
    n = K * N * 4
    forward = n + N * 4                              # read the samples, write the result
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
                op, f"K={K}, N={N}",
                {name: (lambda fn=fn: fn(values, log_prob, 0)) for name, fn in impls.items()},
                (values, log_prob), grad_out, device,
                lambda mode, K=K, N=N, op=op: estimator_bytes(K, N, op, mode))
    impls = {"eager": reference.categorical_sample,
             "compile": torch.compile(reference.categorical_sample),
             "gradext": gradext.categorical_sample}
    for B, C, S in categorical_cases(device, quick):
        logits = torch.randn(B, C, device=device, requires_grad=True)
        grad_out = torch.randn(S, B, device=device)
        rows += harness.time_modes(
            "categorical_sample", f"[{B}, {C}] x {S}",
            {name: (lambda fn=fn: fn(logits, S)[1]) for name, fn in impls.items()},
            (logits,), grad_out, device)
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
            lines.append(f"{'PASS' if r >= need else 'MISS'}  {device.type.upper()} {op} "
                         f"fwd+bwd {case}: {r:.2f}x eager (target >= {need}x)")
    return lines


if __name__ == "__main__":
    sys.exit(harness.main("score_function", __doc__.splitlines()[0], measure, report_targets,
                          "issue 4"))

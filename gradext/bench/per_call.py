"""Fixed per-call cost: every op at the sizes a training step calls it with (a VAE minibatch of
128 datapoints), where the dispatcher, argument checks, Python frames and the autograd engine
weigh as much as the kernel. gradext against eager PyTorch, forward (no_grad) and
forward+backward (autograd.grad), on one thread and on all.

    python -m gradext.bench.per_call [--device cpu|cuda|all] [--rounds N] [--out DIR]

At these sizes one call takes tens of microseconds, and a shared machine's noise is of the same
order, so the two implementations are timed interleaved: each round times a block of calls of
eager, then of gradext, and the speed-up is the median over rounds of the per-round ratio, with
the lowest and highest round beside it. Writes benchmarks/results/per_call_<device>.{csv,md}.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import distributions as td

import gradext
from gradext import distributions, reference
from gradext.bench import harness
from gradext.bench.dirichlet import eager_beta, eager_dirichlet
from gradext.bench.gamma import eager_rsample as eager_gamma
from gradext.bench.gaussian import eager_rsample
from gradext.bench.von_mises import eager_rsample as eager_von_mises


def cases(device: torch.device) -> list[tuple[str, str, Callable, Callable, Callable]]:
    """(op, case, make_inputs, eager, gradext): make_inputs() gives the differentiable inputs;
    eager and gradext map them to the tensor whose gradient a training step takes."""

    def leaves(*shapes):
        return lambda: tuple(torch.randn(s, device=device, requires_grad=True) for s in shapes)

    def positive_leaves(*shapes):  # concentrations and rates, 0.5 to 3.5
        return lambda: tuple(
            (torch.rand(s, device=device) * 3 + 0.5).requires_grad_() for s in shapes
        )

    return [
        # pytorch/examples' VAE: a [128, 20] Gaussian latent.
        ("gaussian_rsample", "[128, 20]", leaves((128, 20), (128, 20)),
         eager_rsample, gradext.gaussian_rsample),
        ("gaussian_rsample", "[256, 64]", leaves((256, 64), (256, 64)),
         eager_rsample, gradext.gaussian_rsample),
        ("gaussian_rsample", "[128, 20] K=5", leaves((128, 20), (128, 20)),
         lambda mu, lv: eager_rsample(mu, lv, 5),
         lambda mu, lv: gradext.gaussian_rsample(mu, lv, 5)),
        # The same latent through torch.distributions.Normal(loc, scale).rsample(), as most VAE code
        # draws it, against gradext.distributions.Normal (scales 0.5 to 3.5).
        ("Normal.rsample", "[128, 20]", positive_leaves((128, 20), (128, 20)),
         lambda loc, scale: td.Normal(loc, scale, validate_args=False).rsample(),
         lambda loc, scale: distributions.Normal(loc, scale, validate_args=False).rsample()),
        # The same with torch's default validate_args=True: both classes run torch's argument
        # checks (about 13 us of constraint kernels) on every construction.
        ("Normal.rsample", "[128, 20] validated", positive_leaves((128, 20), (128, 20)),
         lambda loc, scale: td.Normal(loc, scale).rsample(),
         lambda loc, scale: distributions.Normal(loc, scale).rsample()),
        # Gamma, Dirichlet and Beta latents of the same size (a Dirichlet: 20-topic simplices).
        ("gamma_rsample", "[128, 20]", positive_leaves((128, 20), (128, 20)),
         eager_gamma, gradext.gamma_rsample),
        ("dirichlet_rsample", "[128, 20]", positive_leaves((128, 20)),
         eager_dirichlet, gradext.dirichlet_rsample),
        ("beta_rsample", "[128, 20]", positive_leaves((128, 20), (128, 20)),
         eager_beta, gradext.beta_rsample),
        # An angular latent of the same size (locations and concentrations 0.5 to 3.5).
        ("von_mises_rsample", "[128, 20]", positive_leaves((128, 20), (128, 20)),
         eager_von_mises, gradext.von_mises_rsample),
        # A discrete VAE: 128 datapoints x 20 latents of 10 classes.
        ("gumbel_softmax", "[2560, 10] soft", leaves((2560, 10)),
         lambda x: F.gumbel_softmax(x, tau=0.5), lambda x: gradext.gumbel_softmax(x, tau=0.5)),
        ("gumbel_softmax", "[2560, 10] hard", leaves((2560, 10)),
         lambda x: F.gumbel_softmax(x, tau=0.5, hard=True),
         lambda x: gradext.gumbel_softmax(x, tau=0.5, hard=True)),
        # 128 datapoints x 200 binary latents.
        ("gumbel_sigmoid", "[128, 200] soft", leaves((128, 200)),
         lambda x: reference.gumbel_sigmoid(x, 0.5), lambda x: gradext.gumbel_sigmoid(x, 0.5)),
        # REBAR's primitive: soft and soft_cond of 128 datapoints x 20 latents of 10 classes.
        ("conditional_relaxation", "[128, 20, 10]", leaves((128, 20, 10)),
         lambda x: torch.stack(reference.conditional_relaxation(x, 0.5, categorical=True)[1:]),
         lambda x: torch.stack(gradext.conditional_relaxation(x, 0.5, categorical=True)[1:])),
        ("categorical_sample", "[2560, 10] x 1", leaves((2560, 10)),
         lambda x: reference.categorical_sample(x, 1)[1],
         lambda x: gradext.categorical_sample(x, 1)[1]),
        # K = 8 samples of 128 datapoints.
        ("score_function_loo", "K=8, N=128", leaves((8, 128), (8, 128)),
         reference.score_function_loo, gradext.score_function_loo),
        ("vimco", "K=8, N=128", leaves((8, 128), (8, 128)), reference.vimco, gradext.vimco),
    ]  # fmt: skip


def _call(fn, inputs, mode, device):
    if mode == "forward":
        with torch.no_grad():
            out = fn(*inputs)
    else:
        out = fn(*inputs)
        torch.autograd.grad(out, inputs, torch.ones_like(out))
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved(fns: dict, rounds: int, calls: int) -> dict[str, list[float]]:
    """Per-round mean microseconds of each no-argument callable, the callables interleaved."""
    for fn in fns.values():
        for _ in range(max(3, calls // 10)):
            fn()
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            times[name].append((time.perf_counter() - start) / calls * 1e6)
    return times


def measure(device: torch.device, threads: int, rounds: int, calls: int) -> list[dict]:
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    rows = []
    try:
        for op, case, make_inputs, eager, fused in cases(device):
            inputs = make_inputs()
            for mode in ("forward", "forward+backward"):
                times = interleaved(
                    {
                        "eager": lambda fn=eager: _call(fn, inputs, mode, device),
                        "gradext": lambda fn=fused: _call(fn, inputs, mode, device),
                    },
                    rounds,
                    calls,
                )
                ratios = [e / g for e, g in zip(times["eager"], times["gradext"])]
                row = {
                    "op": op,
                    "case": case,
                    "mode": mode,
                    "threads": threads,
                    "eager_us": statistics.median(times["eager"]),
                    "gradext_us": statistics.median(times["gradext"]),
                    "speedup": statistics.median(ratios),
                    "speedup_min": min(ratios),
                    "speedup_max": max(ratios),
                }
                rows.append(row)
                print(
                    f"  {op:>18} {case:>16} {mode:>16} {threads} thr: eager "
                    f"{row['eager_us']:8.1f} us, gradext {row['gradext_us']:8.1f} us, "
                    f"{row['speedup']:.2f}x [{row['speedup_min']:.2f}, {row['speedup_max']:.2f}]",
                    flush=True,
                )
    finally:
        torch.set_num_threads(previous)
    return rows


def write(rows: list[dict], device: torch.device, out_dir: str) -> tuple[str, str]:
    os.makedirs(out_dir, exist_ok=True)
    base = os.path.join(out_dir, f"per_call_{device.type}")
    with open(base + ".csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    lines = ["# per-call cost at training sizes", ""]
    lines += [f"- {line}" for line in harness.header_lines(device)]
    lines += [
        "- method: eager and gradext interleaved in rounds; medians over rounds, speed-up "
        "[lowest, highest round]",
        "",
        "| op | case | mode | threads | eager us | gradext us | x eager [min, max] |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['op']} | {r['case']} | {r['mode']} | {r['threads']} | {r['eager_us']:.1f} | "
            f"{r['gradext_us']:.1f} | {r['speedup']:.2f} "
            f"[{r['speedup_min']:.2f}, {r['speedup_max']:.2f}] |"
        )
    with open(base + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    return base + ".csv", base + ".md"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="cpu")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=200, help="calls per round and impl")
    parser.add_argument("--out", default=harness.RESULTS_DIR)
    args = parser.parse_args(argv)
    devices = [torch.device("cpu")] if args.device in ("cpu", "all") else []
    if args.device in ("cuda", "all") and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    for device in devices:
        all_threads = torch.get_num_threads()
        thread_counts = [1] if device.type == "cuda" or all_threads == 1 else [1, all_threads]
        rows = []
        for threads in thread_counts:
            rows += measure(device, threads, args.rounds, args.calls)
        print("wrote", *write(rows, device, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())

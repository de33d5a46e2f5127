"""Shared benchmark harness: times several implementations of one op side by side in one
process, reports medians (and CUDA peak memory), and writes CSV + markdown into the results
folder (``benchmarks/results`` under the current directory unless told otherwise: run from a
checkout, that is the repository's) stamped with device, torch version and commit.

CPU timings use torch.utils.benchmark (blocked_autorange, median); CUDA timings use CUDA events
around each call after warm-up, median of the repeats. Compile time is excluded: every
implementation is warmed up first.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import os
import platform
import statistics
import subprocess
from collections.abc import Callable

import torch
import torch.utils.benchmark

import gradext

RESULTS_DIR = os.path.join("benchmarks", "results")


@dataclasses.dataclass
class Measurement:
    op: str
    case: str  # shape / parameters, human-readable
    mode: str  # "forward" or "forward+backward"
    impl: str  # "eager", "compile", "gradext"
    median_ms: float
    peak_mem_mb: float | None = None  # CUDA only: peak allocated during one call
    bytes_moved: int | None = None  # minimum bytes an ideal kernel moves (for GB/s)

    @property
    def gbps(self) -> float | None:
        if self.bytes_moved is None:
            return None
        return self.bytes_moved / (self.median_ms * 1e-3) / 1e9


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{name} ({os.cpu_count()} logical CPUs, {torch.get_num_threads()} torch threads)"


def commit() -> str:
    """The checkout's commit when gradext runs from one, else the installed version."""
    try:
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
        if out.returncode == 0:
            return out.stdout.strip() + ("+dirty" if dirty.strip() else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return f"installed {gradext.__version__}"


def time_call(
    fn: Callable[[], object],
    device: torch.device,
    min_run_time: float = 0.5,
    cuda_repeats: int = 50,
) -> tuple[float, float | None]:
    """(median milliseconds, CUDA peak MB or None) of fn(), after warm-up."""
    for _ in range(3):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        peak = (torch.cuda.max_memory_allocated(device) - base) / 2**20
        times = []
        for _ in range(cuda_repeats):
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        return statistics.median(times), peak
    # Timer defaults to one thread; measure with the threads torch would use.
    timer = torch.utils.benchmark.Timer(
        stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads()
    )
    return timer.blocked_autorange(min_run_time=min_run_time).median * 1e3, None


def header_lines(device: torch.device) -> list[str]:
    return [
        f"device: {device_name(device)}",
        f"torch: {torch.__version__}; gradext commit: {commit()}; "
        f"extension: {gradext.has_extension()}; CPU kernels: {gradext.cpu_isa()}",
        f"date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
    ]


def speedups(rows: list[Measurement]) -> dict[tuple, float]:
    """eager_ms / impl_ms for every (op, case, mode, impl)."""
    eager = {(m.op, m.case, m.mode): m.median_ms for m in rows if m.impl == "eager"}
    return {
        (m.op, m.case, m.mode, m.impl): eager[(m.op, m.case, m.mode)] / m.median_ms
        for m in rows
        if (m.op, m.case, m.mode) in eager
    }


def markdown_table(rows: list[Measurement], device: torch.device) -> str:
    ratio = speedups(rows)
    lines = [f"- {line}" for line in header_lines(device)] + [""]
    lines.append("| op | case | mode | impl | median ms | x eager | GB/s | peak MB |")
    lines.append("|---|---|---|---|---:|---:|---:|---:|")
    for m in rows:
        r = ratio.get((m.op, m.case, m.mode, m.impl))
        lines.append(
            f"| {m.op} | {m.case} | {m.mode} | {m.impl} | {m.median_ms:.3f} | "
            f"{'' if r is None else f'{r:.2f}'} | "
            f"{'' if m.gbps is None else f'{m.gbps:.0f}'} | "
            f"{'' if m.peak_mem_mb is None else f'{m.peak_mem_mb:.1f}'} |"
        )
    return "\n".join(lines) + "\n"


def write_results(
    name: str, rows: list[Measurement], device: torch.device, out_dir: str = RESULTS_DIR
) -> tuple[str, str]:
    """Writes <out_dir>/<name>_<device type>.{csv,md}; returns the two paths."""
    os.makedirs(out_dir, exist_ok=True)
    stem = os.path.join(out_dir, f"{name}_{device.type}")
    ratio = speedups(rows)
    with open(stem + ".csv", "w", newline="") as f:
        writer = csv.writer(f)
        for line in header_lines(device):
            writer.writerow([f"# {line}"])
        writer.writerow(
            ["op", "case", "mode", "impl", "median_ms", "speedup_vs_eager", "gbps", "peak_mem_mb"]
        )
        for m in rows:
            r = ratio.get((m.op, m.case, m.mode, m.impl))
            writer.writerow(
                [
                    m.op,
                    m.case,
                    m.mode,
                    m.impl,
                    f"{m.median_ms:.5f}",
                    "" if r is None else f"{r:.3f}",
                    "" if m.gbps is None else f"{m.gbps:.1f}",
                    "" if m.peak_mem_mb is None else f"{m.peak_mem_mb:.2f}",
                ]
            )
    with open(stem + ".md", "w") as f:
        f.write(f"# {name} benchmark\n\n" + markdown_table(rows, device))
    return stem + ".csv", stem + ".md"


def time_modes(
    op: str,
    case: str,
    impls: dict,
    inputs: tuple,
    grad_out: torch.Tensor,
    device: torch.device,
    bytes_for_mode=None,
) -> list[Measurement]:
    """Times each implementation (a no-argument callable returning the op's output) forward
    (under no_grad) and forward+backward (autograd.grad of the output into `inputs` with
    `grad_out`). bytes_for_mode(mode) gives gradext's ideal traffic, for GB/s."""
    rows = []
    for mode in ("forward", "forward+backward"):
        for name, fn in impls.items():
            if mode == "forward":

                def call(fn=fn):
                    with torch.no_grad():
                        return fn()
            else:

                def call(fn=fn):
                    return torch.autograd.grad(fn(), inputs, grad_out)

            ms, peak = time_call(call, device)
            moved = bytes_for_mode(mode) if (bytes_for_mode and name == "gradext") else None
            rows.append(Measurement(op, case, mode, name, ms, peak, moved))
            print(f"  {case:>26} {mode:>16} {name:>8}: {ms:8.3f} ms", flush=True)
    return rows


def target_line(label: str, ok: bool) -> str:
    """A target's line in a benchmark's report: PASS or MISS, then what was measured."""
    return f"{'PASS' if ok else 'MISS'}  {label}"


def speed_targets(rows: list[Measurement], device: torch.device, target: float) -> list[str]:
    """The forward+backward speed-up of gradext over eager for each (op, case), against
    `target`, each with its ratio to torch.compile beside it."""
    ratio = speedups(rows)
    where = "CPU" if device.type == "cpu" else "CUDA"
    lines = []
    for (op, case, mode, impl), r in ratio.items():
        if impl != "gradext" or mode != "forward+backward":
            continue
        vs_compile = r / ratio[(op, case, mode, "compile")]
        label = f"{where} {op} fwd+bwd {case}: {r:.2f}x eager (target >= {target:g}x)"
        lines.append(target_line(label, r >= target))
        lines.append(f"info  {where} {op} fwd+bwd {case}: {vs_compile:.2f}x torch.compile")
    return lines


def main(name: str, description: str, measure, report_targets, argv=None) -> int:
    """The shared command line of the family benchmarks (python -m gradext.bench.<family>):
    --device cpu|cuda|all, --quick, --out."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    parser.add_argument("--quick", action="store_true", help="the target sizes only")
    parser.add_argument("--out", default=RESULTS_DIR, help="results folder (%(default)s)")
    args = parser.parse_args(argv)
    devices = [torch.device("cpu")] if args.device in ("cpu", "all") else []
    if args.device in ("cuda", "all"):
        if torch.cuda.is_available():
            devices.append(torch.device("cuda"))
        elif args.device == "cuda":
            parser.error("--device cuda: no CUDA device is available")
    for device in devices:
        print(f"{name} on {device_name(device)}", flush=True)
        rows = measure(device, args.quick)
        targets = report_targets(rows, device)
        csv_path, md_path = write_results(name, rows, device, args.out)
        with open(md_path, "a") as f:
            f.write("\nTargets:\n\n" + "\n".join(f"- {t}" for t in targets) + "\n")
        print()
        print(markdown_table(rows, device))
        print("\n".join(targets))
        print(f"wrote {csv_path} and {md_path}\n")
    return 0

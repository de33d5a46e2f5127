"""``python -m gradext bench``: the benchmark of every op family in the registry
(gradext.op_registry, in its order; gradext/bench/<family>.py each) in one run, one table, a CSV
and a PNG bar chart of the speed-up over eager PyTorch per op and size."""

from __future__ import annotations

import importlib
from pathlib import Path

import torch

from gradext import op_registry
from gradext.bench import harness


def family_benchmarks(families=None) -> list:
    """The benchmark module of each family (all of the registry's by default)."""
    known = op_registry.families()
    for family in families or ():
        if family not in known:
            raise ValueError(f"no op family {family!r}; the registry has {known}")
    return [importlib.import_module(f"gradext.bench.{family}") for family in families or known]


def speedup_chart(rows, path: Path, title: str) -> Path | None:
    """Horizontal bars: forward+backward speed-up over eager of torch.compile and gradext for
    every (op, case). Returns None (and says so) when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no chart (pip install matplotlib)")
        return None
    eager = {
        (m.op, m.case): m.median_ms
        for m in rows
        if m.impl == "eager" and m.mode == "forward+backward"
    }
    labels = list(eager)
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(labels) + 1.5))
    height = 0.38
    for offset, impl in ((-height / 2, "compile"), (height / 2, "gradext")):
        ms = {
            (m.op, m.case): m.median_ms
            for m in rows
            if m.impl == impl and m.mode == "forward+backward"
        }
        values = [eager[key] / ms[key] if key in ms else 0.0 for key in labels]
        ax.barh([i + offset for i in range(len(labels))], values, height, label=impl)
    ax.axvline(1.0, color="black", linewidth=0.8, linestyle="--")
    ax.set_yticks(range(len(labels)), [f"{op}  {case}" for op, case in labels], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("forward+backward speed-up over eager PyTorch (x)")
    ax.set_title(title, fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def run(
    device_choice: str = "all",
    quick: bool = False,
    families=None,
    out_dir: str = harness.RESULTS_DIR,
) -> int:
    suites = family_benchmarks(families)
    devices = [torch.device("cpu")] if device_choice in ("cpu", "all") else []
    if device_choice in ("cuda", "all") and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    elif device_choice == "cuda":
        raise ValueError("--device cuda: no CUDA device is available")
    for device in devices:
        print(f"gradext benchmarks on {harness.device_name(device)}", flush=True)
        rows, targets = [], []
        for suite in suites:
            suite_rows = suite.measure(device, quick)
            rows += suite_rows
            targets += suite.report_targets(suite_rows, device)
        name = "all" if not families else "_".join(families)
        csv_path, md_path = harness.write_results(name, rows, device, out_dir)
        with open(md_path, "a") as f:
            f.write("\nTargets:\n\n" + "\n".join(f"- {t}" for t in targets) + "\n")
        chart = speedup_chart(rows, Path(md_path).with_suffix(".png"), harness.device_name(device))
        print()
        print(harness.markdown_table(rows, device))
        print("\n".join(targets))
        print(f"wrote {csv_path}, {md_path}" + (f" and {chart}" if chart else "") + "\n")
    return 0

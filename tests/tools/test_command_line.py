"""python -m gradext: the commands run, and bad arguments give clear errors."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_command_line():
    run = lambda *a: subprocess.run(
        [sys.executable, "-m", "gradext", *a],  # noqa: E731
        capture_output=True,
        text=True,
        timeout=120,
    )
    ok = run("variance", "--mu", "1", "--alpha", "2", "-K", "2", "--replicates", "2000")
    assert ok.returncode == 0, ok.stderr
    assert "| score_function_loo | 1 | 2 |" in ok.stdout
    assert "| grg | 2 | 2 |" in ok.stdout and "| implicit | 2 | 2 |" in ok.stdout
    bad = run("variance", "--replicates", "0")
    assert bad.returncode == 2 and "expected a positive integer, got 0" in bad.stderr
    missing = run()
    assert missing.returncode == 2 and "required: command" in missing.stderr


def test_bench_command_rejects_bad_arguments():
    bad = subprocess.run(
        [sys.executable, "-m", "gradext", "bench", "--device", "tpu"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "invalid choice: 'tpu'" in bad.stderr


def test_speedup_chart(tmp_path):
    """The chart of `python -m gradext bench` from a few synthetic measurements."""
    pytest.importorskip("matplotlib")
    from gradext.bench import suite
    from gradext.bench.harness import Measurement

    rows = [
        Measurement("op", "[8, 8]", "forward+backward", impl, ms)
        for impl, ms in (("eager", 4.0), ("compile", 2.0), ("gradext", 1.0))
    ]
    path = suite.speedup_chart(rows, tmp_path / "chart.png", "test")
    assert path is not None and path.stat().st_size > 1000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_command_rejects_bad_arguments(tmp_path):
    run = lambda *a: subprocess.run(
        [sys.executable, "-m", "gradext", "demo", *a],  # noqa: E731
        capture_output=True,
        text=True,
        timeout=120,
    )
    few = run("--samples", "1")
    assert few.returncode == 2 and "expected an integer >= 2" in few.stderr
    unknown = run("--estimators", "magic")
    assert unknown.returncode != 0 and "unknown estimators ['magic']" in unknown.stderr
    missing = run("--data", str(tmp_path / "nothing.npy"), "--out", str(tmp_path))
    assert missing.returncode != 0 and "no such file" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_every_family_of_the_registry_has_a_benchmark():
    """`python -m gradext bench` runs one module per family of the registry: each exists in the
    installed package and has the harness's two entry points."""
    from gradext import op_registry
    from gradext.bench import suite

    modules = suite.family_benchmarks()
    assert [m.__name__ for m in modules] == [f"gradext.bench.{f}" for f in op_registry.families()]
    for module in modules:
        assert callable(module.measure) and callable(module.report_targets)


def test_bench_rejects_an_unknown_family():
    bad = subprocess.run(
        [sys.executable, "-m", "gradext", "bench", "--family", "gama"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0 and "no op family 'gama'" in bad.stderr

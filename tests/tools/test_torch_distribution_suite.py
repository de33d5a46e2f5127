"""scripts/torch_distribution_suite.py, which runs PyTorch's own torch.distributions test file
against gradext's classes: the substitution reaches a file's `from torch.distributions import`,
`--torch` leaves torch's classes, and the collection check refuses a file that kept torch's.
(PyTorch's file itself ships in no wheel; the README says what it gave.)"""

from __future__ import annotations

import pathlib
import subprocess
import sys
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "torch_distribution_suite.py"

PROBE = textwrap.dedent(
    """
    import torch
    from torch.distributions import Categorical, Normal, RelaxedBernoulli

    EXPECT_GRADEXT = {expect_gradext}

    def test_the_names_are_bound_as_expected():
        for cls in (Normal, Categorical, RelaxedBernoulli):
            assert (cls.__module__ == "gradext.distributions") is EXPECT_GRADEXT, cls

    def test_the_samples_come_from_that_class():
        x = Normal(torch.zeros(3), torch.ones(3)).rsample((2,))
        assert x.shape == (2, 3)
    """
)


def _run(tmp_path, source: str, *flags: str) -> subprocess.CompletedProcess:
    """Runs the script on a test file of the given source, with the given flags."""
    test_file = tmp_path / "test_probe.py"
    test_file.write_text(source)
    return subprocess.run(
        [sys.executable, str(SCRIPT), *flags, str(test_file), "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_file_sees_gradexts_classes(tmp_path):
    result = _run(tmp_path, PROBE.format(expect_gradext=True))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_torch_flag_keeps_torchs_classes(tmp_path):
    result = _run(tmp_path, PROBE.format(expect_gradext=False), "--torch")
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_file_that_kept_torchs_classes_is_refused(tmp_path):
    """The collection check: a module that binds torch's class under one of the substituted
    names (as a file imported before the substitution would) stops the run."""
    stale = "from torch.distributions.normal import Normal\n\ndef test_x():\n    pass\n"
    result = _run(tmp_path, stale)
    assert result.returncode != 0
    assert "not gradext's class" in result.stdout + result.stderr


def test_seed_offset_moves_the_seeds_the_file_sets(tmp_path):
    pytest.importorskip("expecttest")  # torch.testing._internal.common_utils imports it
    source = textwrap.dedent(
        """
        import torch
        from torch.testing._internal.common_utils import set_rng_seed

        def test_seed():
            set_rng_seed(7)
            got = torch.rand(3)
            torch.manual_seed(7 + 5)
            assert torch.equal(got, torch.rand(3))
        """
    )
    result = _run(tmp_path, source, "--torch", "--seed-offset", "5")
    assert result.returncode == 0, result.stdout + result.stderr

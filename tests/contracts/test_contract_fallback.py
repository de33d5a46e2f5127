"""The package without its compiled extension: import works, one warning, every op runs on
the pure-PyTorch fallback with the same contract."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import torch

import gradext
from gradext import reference

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_disable_env_forces_fallback_without_warning():
    result = _run(
        """
        import warnings
        warnings.simplefilter("error")  # any warning fails the run
        import torch, gradext
        assert not gradext.has_extension() and not gradext.has_cuda()
        assert gradext.extension_error() == "disabled by GRADEXT_DISABLE_EXT=1"
        mu = torch.zeros(4, 3, requires_grad=True)
        logvar = torch.zeros(3, requires_grad=True)
        z = gradext.gaussian_rsample(mu, logvar, 5)
        z.sum().backward()
        assert z.shape == (5, 4, 3) and torch.equal(mu.grad, torch.full((4, 3), 5.0))
        print("ok")
        """,
        GRADEXT_DISABLE_EXT="1",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_missing_extension_warns_once_and_falls_back():
    result = _run(
        """
        import sys, warnings

        class BlockExtension:  # makes `import gradext._C` fail as if it had not been built
            def find_spec(self, name, path=None, target=None):
                if name == "gradext._C":
                    raise ImportError("simulated: extension not built")

        sys.meta_path.insert(0, BlockExtension())
        import torch, gradext
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(3):
                gradext.gaussian_rsample(torch.zeros(2), torch.zeros(2))
        messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
        assert len(messages) == 1, messages
        assert "simulated: extension not built" in messages[0], messages
        assert not gradext.has_extension()
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_force_fallback_runs_the_reference():
    mu = torch.randn(6, 4)
    logvar = torch.randn(6, 4)
    with gradext._extension.force_fallback():
        assert not gradext.has_extension()
        z = gradext.gaussian_rsample(mu, logvar, 2, generator=torch.Generator().manual_seed(0))
    expected = reference.gaussian_rsample(mu, logvar, 2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(z, expected)

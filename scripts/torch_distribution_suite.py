"""Runs PyTorch's own tests for torch.distributions with gradext's classes in place of torch's.

PyTorch's test file (test/distributions/test_distributions.py in a PyTorch checkout) ships in no
wheel, so it is not part of this repository's test suite; this script runs it, or any copy of it,
unchanged. Before pytest imports the file, the names `Normal`, `Gamma`, `Beta`, `Dirichlet`,
`VonMises`, `RelaxedBernoulli`, `RelaxedOneHotCategorical` and `Categorical` in the
torch.distributions package are bound to gradext.distributions' classes, so every
`from torch.distributions import Normal` in the file (and every example, KL pair, Independent,
TransformedDistribution and MixtureSameFamily built from them) gets gradext's class. Classes torch
builds internally (LogNormal's base Normal, Chi2 as a Gamma) stay torch's. A plugin checks at
collection that the substitution took.

    python scripts/torch_distribution_suite.py PATH/test_distributions.py [pytest arguments]
    python scripts/torch_distribution_suite.py --torch PATH/...   # torch's own classes
    python scripts/torch_distribution_suite.py --seed-offset 3 PATH/... -k sample

The file's statistical tests fix their seeds (its Note [Randomized statistical tests]): each
passes with torch's noise stream at the seed it was tuned for and fails at its natural rate with
any other stream, a few percent per case. --seed-offset N adds N to every seed the file sets, so
that a run over several offsets compares the failure rates of gradext's classes and torch's.

The README ("torch.distributions classes") lists the checks of torch's that cannot hold by design.
torch's test utilities need the `expecttest` package.
"""

from __future__ import annotations

import argparse
import sys

import pytest
import torch.distributions

SUBSTITUTED = (
    "Normal",
    "Gamma",
    "Beta",
    "Dirichlet",
    "VonMises",
    "RelaxedBernoulli",
    "RelaxedOneHotCategorical",
    "Categorical",
)


class _CheckSubstitution:
    """Fails the run at collection if a collected module still holds torch's class."""

    def __init__(self, replacements: dict[str, type]):
        self.replacements = replacements

    def pytest_collection_modifyitems(self, items):
        for module in {item.module for item in items if getattr(item, "module", None)}:
            for name, cls in self.replacements.items():
                held = getattr(module, name, cls)
                if held is not cls:
                    raise pytest.UsageError(
                        f"{module.__name__}.{name} is {held!r}, not gradext's class: the file "
                        "was imported before the substitution"
                    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("test_file", help="PyTorch's test/distributions/test_distributions.py")
    parser.add_argument(
        "--torch", action="store_true", help="run with torch's own classes (the baseline)"
    )
    parser.add_argument(
        "--seed-offset", type=int, default=0, help="added to every seed the test file sets"
    )
    args, pytest_args = parser.parse_known_args(argv)
    if args.seed_offset:
        from torch.testing._internal import common_utils

        set_rng_seed = common_utils.set_rng_seed

        def offset_seed(seed=None):
            set_rng_seed((common_utils.SEED if seed is None else seed) + args.seed_offset)

        common_utils.set_rng_seed = offset_seed
    plugins = []
    if not args.torch:
        from gradext import distributions as gradext_distributions

        replacements = {name: getattr(gradext_distributions, name) for name in SUBSTITUTED}
        for name, cls in replacements.items():
            setattr(torch.distributions, name, cls)
        plugins.append(_CheckSubstitution(replacements))
    return int(pytest.main([args.test_file, "-p", "no:cacheprovider", *pytest_args], plugins))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

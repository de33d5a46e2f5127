"""The dirichlet tests' native shim of csrc/common's Gamma maths (tests/helpers/gamma_shim.py)."""

from helpers.gamma_shim import gamma_math  # noqa: F401  (a package-scoped fixture)

"""The von Mises tests' native shim of csrc/common's von Mises maths
(tests/helpers/von_mises_shim.py)."""

from helpers.von_mises_shim import von_mises_math  # noqa: F401  (a package-scoped fixture)

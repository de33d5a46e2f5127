"""The pure-PyTorch fallback against the kernels, for every op of the registry that draws no
noise (the estimators: the two take the same inputs), to second order in float64. Ops that draw
noise cannot be compared value for value (the fallback draws with torch.rand): each family's
tests compare them on the kernels' own noise and in distribution."""

from __future__ import annotations

import pytest
import torch

from gradext import _extension
from gradext.op_registry import EXAMPLE_SHAPE, OPS
from helpers.common import requires_extension
from helpers.higher_order import (
    F64,
    assert_same,
    second_order,
    warnings_are_errors,  # noqa: F401  (autouse fixture)
)

pytestmark = requires_extension


@pytest.mark.parametrize("case", [c for c in OPS if not c.random], ids=lambda case: case.name)
def test_fallback_matches_kernels_to_second_order(case):
    x = torch.randn(*EXAMPLE_SHAPE, **F64).requires_grad_()
    kernels = second_order(case.example, (x,))
    with _extension.force_fallback():
        fallback = second_order(case.example, (x,))
    assert_same(kernels, fallback)

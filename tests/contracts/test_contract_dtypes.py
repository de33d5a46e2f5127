"""Every op of the registry in float32, float16 and bfloat16 against float64 on the same rounded
inputs and seed, up to second derivatives (first derivatives where the registry says the second
do not exist): results come back in the input's dtype, finite, and within the dtype's
precision."""

from __future__ import annotations

import pytest
import torch

from gradext.op_registry import EXAMPLE_SHAPE, OPS
from helpers.common import requires_extension
from helpers.higher_order import (
    F64,
    second_order,
    warnings_are_errors,  # noqa: F401  (autouse fixture)
)

# Scaled error |a - b| / (1 + |b|) allowed against float64: about 3x what was measured.
SECOND_ORDER_TOLERANCE = {torch.float32: 2e-5, torch.float16: 3e-2, torch.bfloat16: 6e-2}


@requires_extension
@pytest.mark.parametrize("dtype", list(SECOND_ORDER_TOLERANCE))
@pytest.mark.parametrize("case", OPS, ids=lambda case: case.name)
def test_every_dtype_against_float64(case, dtype):
    """Second derivatives in each dtype come back in the input's dtype, finite, and within the
    dtype's precision of float64 on the same (rounded) inputs and seed."""
    op = case.example
    x = torch.randn(*EXAMPLE_SHAPE, **F64).to(dtype)
    order = 2 if case.second_order else 1
    (got,) = second_order(op, (x.clone().requires_grad_(),), order)
    (expected,) = second_order(op, (x.double().requires_grad_(),), order)
    assert got.dtype == dtype and torch.isfinite(got).all()
    scaled_error = ((got.double() - expected).abs() / (1 + expected.abs())).max().item()
    assert scaled_error < SECOND_ORDER_TOLERANCE[dtype]

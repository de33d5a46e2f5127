"""_first_invalid_parameter, the fused argument check of gradext.distributions' classes, against
torch's own constraint checks as the oracle: the index of the first value with an element
outside its constraint (positive: 0 < x; real: not NaN), or the number of values when all hold,
for every dtype, sizes on both sides of the kernel's blocks and parallel grain, broadcast and
strided values, on each device."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import constraints

from helpers.common import ALL_DTYPES, num_threads, requires_extension

pytestmark = requires_extension

# Sizes around the CPU kernel's block (1024) and parallel grain (65536).
SIZES = [0, 1, 7, 1023, 1024, 1025, 65536, 65537, 200_003]
# Values that break a constraint: (value, breaks positive, breaks real).
BREAKERS = [
    (float("nan"), True, True),
    (0.0, True, False),
    (-0.0, True, False),
    (-1.5, True, False),
    (float("-inf"), True, False),
]


def first_invalid(values, positive):
    return torch.ops.gradext._first_invalid_parameter(values, positive)


def oracle(values, positive):
    for i, (value, must_be_positive) in enumerate(zip(values, positive)):
        constraint = constraints.positive if must_be_positive else constraints.real
        if not constraint.check(value).all():
            return i
    return len(values)


def valid_value(n, dtype, device, positive):
    x = torch.rand(n, dtype=torch.float64, device=device) + 0.25
    if not positive:
        x = x * torch.where(torch.rand(n, device=device) < 0.5, -1.0, 1.0)
    return x.to(dtype)


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
@pytest.mark.parametrize("n", SIZES)
def test_every_element_and_constraint(device, dtype, n):
    gen = torch.Generator().manual_seed(n)
    for bad, breaks_positive, breaks_real in BREAKERS:
        for positive in (True, False):
            values = [valid_value(n, dtype, device, positive) for _ in range(3)]
            assert first_invalid(values, [positive] * 3) == 3
            if n == 0:
                continue
            where = int(torch.randint(n, (1,), generator=gen))
            values[1][where] = bad
            expected = 1 if (breaks_positive if positive else breaks_real) else 3
            assert expected == oracle(values, [positive] * 3)
            assert first_invalid(values, [positive] * 3) == expected


def test_infinities_are_real_and_inf_is_positive(device):
    x = torch.tensor([float("inf"), float("-inf"), 2.0], device=device)
    assert first_invalid([x], [False]) == 1
    assert first_invalid([x.abs()], [True]) == 1


def test_the_first_invalid_value_is_named(device):
    ok = torch.ones(10, device=device)
    bad = torch.tensor([1.0, float("nan")], device=device)
    assert first_invalid([ok, bad, bad], [True, True, False]) == 1
    assert first_invalid([bad, ok], [False, True]) == 0
    assert first_invalid([ok, -ok], [False, True]) == 1


def test_parallel_tasks_agree(device):
    """Several threads split a large value; the answer does not depend on which finds it."""
    x = torch.rand(300_000, device=device) + 0.5
    for where in (0, 65_535, 65_536, 299_999):
        y = x.clone()
        y[where] = -1.0
        for threads in (1, 2):
            with num_threads(threads):
                assert first_invalid([x, y], [True, True]) == 1


def test_broadcast_and_strided_values(device):
    """A dimension of stride 0 is read once; transposed and sliced values are read whole."""
    row = torch.tensor([1.0, 2.0, -3.0], device=device)
    assert first_invalid([row.expand(1000, 3)], [True]) == 0
    assert first_invalid([row[:2].expand(1000, 2)], [True]) == 1
    scalar = torch.tensor(0.0, device=device).expand(4, 5)
    assert first_invalid([scalar], [True]) == 0
    assert first_invalid([scalar], [False]) == 1
    grid = torch.rand(64, 33, device=device) + 0.5
    grid[40, 7] = float("nan")
    assert first_invalid([grid.t()], [False]) == 0
    assert first_invalid([grid[::2]], [False]) == 0  # row 40 is among the even rows
    assert first_invalid([grid[1::2]], [False]) == 1  # all hold


def test_parameters_that_require_grad_keep_no_graph(device):
    x = (torch.rand(8, device=device) + 1).requires_grad_()
    assert first_invalid([x, x * 2], [True, True]) == 2


def test_errors(device):
    x = torch.ones(3, device=device)
    with pytest.raises(
        RuntimeError,
        match="_first_invalid_parameter: values and positive must have the same length, got 2 "
        "and 1",
    ):
        first_invalid([x, x], [True])
    with pytest.raises(
        TypeError,
        match="_first_invalid_parameter: values must be a floating-point tensor, got dtype Long",
    ):
        first_invalid([x, torch.ones(3, dtype=torch.long, device=device)], [True, True])


@pytest.mark.cuda
def test_values_on_two_devices_are_refused():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    with pytest.raises(RuntimeError, match="both must be on the same device"):
        first_invalid([torch.ones(3, device="cuda"), torch.ones(3)], [True, True])

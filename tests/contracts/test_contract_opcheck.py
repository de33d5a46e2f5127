"""torch.library.opcheck of every dispatcher op of every registry entry (schema, fake kernel,
autograd registration, AOTAutograd), on each device; every op of torch.ops.gradext belongs to an
entry, so a new op cannot miss these checks; the sampling ops carry torch's
nondeterministic_seeded tag."""

from __future__ import annotations

import pytest
import torch

from gradext.op_registry import CHECK_OPS, OPS, TEST_VIEW_OPS
from helpers.common import requires_extension

pytestmark = requires_extension

DISPATCHER_OPS = [(case, op) for case in OPS for op in case.dispatcher_ops]


@pytest.mark.parametrize("case, op", DISPATCHER_OPS, ids=[op for _, op in DISPATCHER_OPS])
def test_opcheck(device, case, op):
    samples = [args for name, args in case.opcheck_samples(device) if name == op]
    assert samples, f"the registry entry of {case.name} gives no opcheck sample for {op}"
    for args in samples:
        torch.library.opcheck(getattr(torch.ops.gradext, op).default, args)


def test_opcheck_philox_uniform(device):
    torch.library.opcheck(
        torch.ops.gradext._philox_uniform.default, (torch.zeros(3, 5, device=device), 1, 2)
    )


def test_opcheck_first_invalid_parameter(device):
    """Its result is data-dependent, so it has no fake kernel (the classes do not call it under
    torch.compile: torch's checks run there) and opcheck's fake-tensor tests are left out."""
    values = [torch.randn(3, 5, device=device), torch.rand(5, device=device).expand(3, 5) + 0.5]
    op = torch.ops.gradext._first_invalid_parameter.default
    torch.library.opcheck(
        op, (values, [False, True]), test_utils=("test_schema", "test_autograd_registration")
    )


def test_every_op_is_in_the_registry():
    """The ops the C++ library defines are exactly those the registry names."""
    defined = {
        name.split("::")[1]
        for name in torch._C._dispatch_get_all_op_names()
        if name.startswith("gradext::")
    }
    named = {op for case in OPS for op in case.dispatcher_ops}
    named |= set(TEST_VIEW_OPS) | set(CHECK_OPS)
    assert defined == named


@pytest.mark.parametrize("case", [c for c in OPS if c.random], ids=lambda case: case.name)
def test_sampling_ops_are_tagged_nondeterministic_seeded(case):
    """The first dispatcher op of a random entry is the sampling op its public function runs."""
    sampling_op = getattr(torch.ops.gradext, case.dispatcher_ops[0]).default
    assert torch.Tag.nondeterministic_seeded in sampling_op.tags

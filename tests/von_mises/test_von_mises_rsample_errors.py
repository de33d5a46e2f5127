"""von_mises_rsample's argument errors, the same type and message on the kernels and the
fallback: a loc that is not finite, a concentration that is not positive and finite (tensors
and numbers), non-floating tensors, shapes that do not broadcast, sample counts, generators; and
the dispatcher ops' own checks. (On a GPU an invalid parameter value stops the kernel with a
device-side assertion instead: docs/design.md.)"""

from __future__ import annotations

import math

import pytest
import torch

import gradext
from helpers.common import requires_extension

BAD_CONCENTRATIONS = [0.0, -1.5, math.nan, math.inf, -math.inf]
BAD_LOCS = [math.nan, math.inf, -math.inf]


@pytest.mark.parametrize("value", BAD_CONCENTRATIONS)
def test_concentration_that_defines_no_von_mises(implementation, value):
    concentration = torch.tensor([1.0, 2.0, value, 3.0])
    with pytest.raises(
        ValueError, match=r"von_mises_rsample: concentration must be positive and finite, got"
    ):
        gradext.von_mises_rsample(torch.zeros(4), concentration)
    with pytest.raises(
        ValueError, match=r"von_mises_rsample: concentration must be positive and finite, got"
    ):
        gradext.von_mises_rsample(torch.zeros(4), value)


@pytest.mark.parametrize("value", BAD_LOCS)
def test_loc_that_is_not_finite(implementation, value):
    with pytest.raises(ValueError, match=r"von_mises_rsample: loc must be finite, got"):
        gradext.von_mises_rsample(torch.tensor([0.0, value]), torch.ones(2))


@requires_extension
def test_the_kernel_error_names_the_value_and_its_position():
    concentration = torch.ones(2, 3)
    concentration[1, 1] = -0.25
    with pytest.raises(ValueError, match=r"got -0\.25 \(at flat position 4 of the broadcast"):
        gradext.von_mises_rsample(torch.zeros(3), concentration, 3)
    loc = torch.zeros(2, 3)
    loc[0, 2] = math.inf
    with pytest.raises(ValueError, match=r"loc must be finite, got inf \(at flat position 2 "):
        gradext.von_mises_rsample(loc, concentration.abs())


def test_non_floating_and_wrong_kinds(implementation):
    with pytest.raises(TypeError, match=r"von_mises_rsample: loc must be a floating-point"):
        gradext.von_mises_rsample(torch.ones(3, dtype=torch.int64), 1.0)
    with pytest.raises(TypeError, match=r"von_mises_rsample: concentration must be a floating"):
        gradext.von_mises_rsample(torch.ones(3), torch.ones(3, dtype=torch.int32))
    with pytest.raises(
        TypeError, match=r"von_mises_rsample: concentration must be a tensor or a real number"
    ):
        gradext.von_mises_rsample(torch.ones(3), "2")
    with pytest.raises(
        TypeError, match=r"von_mises_rsample: concentration must be a tensor or a real number"
    ):
        gradext.von_mises_rsample(torch.ones(3), True)
    with pytest.raises(TypeError, match=r"von_mises_rsample: loc must be a torch.Tensor"):
        gradext.von_mises_rsample([1.0, 2.0], 1.0)


def test_shapes_counts_and_generators(implementation):
    with pytest.raises(
        ValueError, match=r"von_mises_rsample: loc of shape \(3,\) and concentration"
    ):
        gradext.von_mises_rsample(torch.ones(3), torch.ones(4))
    with pytest.raises(ValueError, match=r"von_mises_rsample: num_samples must be >= 1, got 0"):
        gradext.von_mises_rsample(torch.ones(3), 1.0, 0)
    with pytest.raises(
        TypeError, match=r"von_mises_rsample: num_samples must be None, an int or a sample_shape"
    ):
        gradext.von_mises_rsample(torch.ones(3), 1.0, 2.0)
    with pytest.raises(TypeError, match=r"von_mises_rsample: generator must be a torch.Generator"):
        gradext.von_mises_rsample(torch.ones(3), 1.0, generator=3)


@requires_extension
def test_dispatcher_ops_check_their_arguments():
    ops = torch.ops.gradext
    with pytest.raises(
        ValueError, match=r"von_mises_rsample: loc of shape \[3\] and concentration"
    ):
        ops.von_mises_rsample(torch.ones(3), torch.ones(2))
    with pytest.raises(
        TypeError, match=r"von_mises_rsample: concentration must be a floating-point"
    ):
        ops.von_mises_rsample(torch.ones(3), torch.ones(3, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"von_mises_rsample: num_samples must be None or >= 1"):
        ops._von_mises_rsample_seeded(torch.ones(3), torch.ones(()), 0, 1, 2)
    x = torch.ones(2, 3)
    with pytest.raises(ValueError, match=r"_von_mises_rsample_backward: grad of shape \[3\] must"):
        ops._von_mises_rsample_backward(torch.ones(3), x, torch.ones(3), torch.ones(()))
    with pytest.raises(ValueError, match=r"concentration of shape \[4\] does not broadcast"):
        ops._von_mises_rsample_backward(x, x, torch.ones(3), torch.ones(4))

"""gamma_rsample's argument errors, the same type and message on the kernels and the fallback:
parameters that define no Gamma distribution (<= 0, NaN, inf; tensors and numbers), non-floating
tensors, shapes that do not broadcast, sample counts, generators; and the dispatcher ops' own
checks. (On a GPU an invalid parameter value stops the kernel with a device-side assertion
instead: docs/design.md.)"""

from __future__ import annotations

import math

import pytest
import torch

import gradext
from helpers.common import requires_extension

BAD_VALUES = [0.0, -1.5, math.nan, math.inf, -math.inf]


@pytest.mark.parametrize("value", BAD_VALUES)
def test_concentration_that_defines_no_gamma(implementation, value):
    concentration = torch.tensor([1.0, 2.0, value, 3.0])
    with pytest.raises(
        ValueError, match=r"gamma_rsample: concentration must be positive and finite"
    ):
        gradext.gamma_rsample(concentration)


@pytest.mark.parametrize("value", BAD_VALUES)
def test_rate_that_defines_no_gamma(implementation, value):
    with pytest.raises(ValueError, match=r"gamma_rsample: rate must be positive and finite"):
        gradext.gamma_rsample(torch.ones(3), torch.tensor([1.0, value, 1.0]))
    with pytest.raises(ValueError, match=r"gamma_rsample: rate must be positive and finite, got"):
        gradext.gamma_rsample(torch.ones(3), value)


@requires_extension
def test_the_kernel_error_names_the_value_and_its_position():
    concentration = torch.ones(2, 3)
    concentration[1, 1] = -0.25
    with pytest.raises(ValueError, match=r"got -0\.25 \(at flat position 4 of the broadcast"):
        gradext.gamma_rsample(concentration, 1.0, 3)


def test_non_floating_and_wrong_kinds(implementation):
    with pytest.raises(TypeError, match=r"gamma_rsample: concentration must be a floating-point"):
        gradext.gamma_rsample(torch.ones(3, dtype=torch.int64))
    with pytest.raises(TypeError, match=r"gamma_rsample: rate must be a floating-point"):
        gradext.gamma_rsample(torch.ones(3), torch.ones(3, dtype=torch.int32))
    with pytest.raises(TypeError, match=r"gamma_rsample: rate must be a tensor or a real number"):
        gradext.gamma_rsample(torch.ones(3), "2")
    with pytest.raises(TypeError, match=r"gamma_rsample: rate must be a tensor or a real number"):
        gradext.gamma_rsample(torch.ones(3), True)
    with pytest.raises(TypeError, match=r"gamma_rsample: concentration must be a torch.Tensor"):
        gradext.gamma_rsample([1.0, 2.0])


def test_shapes_counts_and_generators(implementation):
    with pytest.raises(ValueError, match=r"gamma_rsample: concentration of shape \(3,\) and rate"):
        gradext.gamma_rsample(torch.ones(3), torch.ones(4))
    with pytest.raises(ValueError, match=r"gamma_rsample: num_samples must be >= 1, got 0"):
        gradext.gamma_rsample(torch.ones(3), 1.0, 0)
    with pytest.raises(
        TypeError, match=r"gamma_rsample: num_samples must be None, an int or a sample_shape"
    ):
        gradext.gamma_rsample(torch.ones(3), 1.0, 2.0)
    with pytest.raises(TypeError, match=r"gamma_rsample: generator must be a torch.Generator"):
        gradext.gamma_rsample(torch.ones(3), generator=3)


@requires_extension
def test_dispatcher_ops_check_their_arguments():
    ops = torch.ops.gradext
    with pytest.raises(ValueError, match=r"gamma_rsample: concentration of shape \[3\] and rate"):
        ops.gamma_rsample(torch.ones(3), torch.ones(2))
    with pytest.raises(TypeError, match=r"gamma_rsample: rate must be a floating-point tensor"):
        ops.gamma_rsample(torch.ones(3), torch.ones(3, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"gamma_rsample: num_samples must be None or >= 1"):
        ops._gamma_rsample_seeded(torch.ones(3), torch.ones(()), 0, 1, 2)
    z = torch.ones(2, 3)
    with pytest.raises(ValueError, match=r"_gamma_rsample_backward: grad of shape \[3\] must"):
        ops._gamma_rsample_backward(torch.ones(3), z, torch.ones(3), torch.ones(()), [True, True])
    with pytest.raises(ValueError, match=r"concentration of shape \[4\] does not broadcast"):
        ops._gamma_rsample_backward(z, z, torch.ones(4), torch.ones(()), [True, True])

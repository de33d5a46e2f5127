"""Argument errors of dirichlet_rsample and beta_rsample, the same type and message on the
kernels and the fallback: concentrations that define no distribution (<= 0, NaN, inf), fewer
than 2 categories, non-floating tensors, counts; and the dispatcher ops' own checks. (On a GPU an
invalid concentration stops the kernel with a device-side assertion instead.)"""

from __future__ import annotations

import math

import pytest
import torch

import gradext
from helpers.common import requires_extension

BAD_VALUES = [0.0, -1.5, math.nan, math.inf]


@pytest.mark.parametrize("value", BAD_VALUES)
def test_concentration_that_defines_no_dirichlet(implementation, value):
    concentration = torch.tensor([[1.0, 2.0, 3.0], [1.0, value, 3.0]])
    with pytest.raises(
        ValueError, match=r"dirichlet_rsample: concentration must be positive and finite"
    ):
        gradext.dirichlet_rsample(concentration)


@pytest.mark.parametrize("value", BAD_VALUES)
def test_beta_names_the_argument(implementation, value):
    with pytest.raises(ValueError, match=r"beta_rsample: concentration1 must be positive"):
        gradext.beta_rsample(torch.tensor([1.0, value]), torch.ones(2))
    with pytest.raises(ValueError, match=r"beta_rsample: concentration0 must be positive"):
        gradext.beta_rsample(torch.ones(2), torch.tensor([value, 1.0]))
    with pytest.raises(ValueError, match=r"beta_rsample: concentration0 must be positive"):
        gradext.beta_rsample(torch.ones(2), value)


def test_categories_types_and_counts(implementation):
    for shape in [(3, 1), (1,), ()]:
        with pytest.raises(ValueError, match=r"at least 2 categories along its last dimension"):
            gradext.dirichlet_rsample(torch.ones(shape))
    with pytest.raises(TypeError, match=r"dirichlet_rsample: concentration must be a floating"):
        gradext.dirichlet_rsample(torch.ones(3, 2, dtype=torch.int32))
    with pytest.raises(ValueError, match=r"dirichlet_rsample: num_samples must be >= 1"):
        gradext.dirichlet_rsample(torch.ones(3, 2), 0)
    with pytest.raises(TypeError, match=r"beta_rsample: concentration1 must be a tensor or a real"):
        gradext.beta_rsample("1", torch.ones(2))
    with pytest.raises(ValueError, match=r"beta_rsample: concentration1 of shape \(3,\) and"):
        gradext.beta_rsample(torch.ones(3), torch.ones(4))


@requires_extension
def test_dispatcher_ops_check_their_arguments():
    ops = torch.ops.gradext
    with pytest.raises(ValueError, match=r"dirichlet_rsample: concentration must have at least 2"):
        ops.dirichlet_rsample(torch.ones(4, 1))
    with pytest.raises(ValueError, match=r"got -2 \(at flat position 3\)"):
        ops.dirichlet_rsample(torch.tensor([[1.0, 1.0], [1.0, -2.0]]))
    x, log_gamma = ops._dirichlet_rsample_seeded(torch.ones(2, 3), None, 1, 0)
    with pytest.raises(ValueError, match=r"_dirichlet_rsample_backward: grad of shape \[3\]"):
        ops._dirichlet_rsample_backward(torch.ones(3), x, log_gamma, torch.ones(3))
    with pytest.raises(ValueError, match=r"does not broadcast to x's trailing shape"):
        ops._dirichlet_rsample_backward(x, x, log_gamma, torch.ones(4))

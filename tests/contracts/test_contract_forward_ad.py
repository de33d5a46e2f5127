"""Forward-mode AD is refused with a clear error on every path and for every op: the ops have
reverse-mode formulas only, and a tangent must never be dropped silently (a dual tensor whose
primal does not require grad would otherwise come back with a tangent of None). Reverse mode,
second derivatives included, is what tests/contracts/test_contract_dtypes.py and the families'
double backward tests cover."""

from __future__ import annotations

import pytest
import torch
import torch.autograd.forward_ad as fwAD

import gradext
from helpers.common import requires_extension

X = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))

CALLS = {
    "gaussian_rsample": lambda x: gradext.gaussian_rsample(x, x, 2),
    "normal_rsample": lambda x: gradext.normal_rsample(x, x.exp(), 2),
    "gumbel_softmax": lambda x: gradext.gumbel_softmax(x, hard=True),
    "gumbel_sigmoid": lambda x: gradext.gumbel_sigmoid(x),
    "categorical_sample": lambda x: gradext.categorical_sample(x, 2)[1],
    "score_function_loo": lambda x: gradext.score_function_loo(x, x),
    "vimco": lambda x: gradext.vimco(x, x),
}

MESSAGE = r": forward-mode AD \(forward_ad dual tensors, torch.func.jvp, jacfwd, hessian\) is not"


@pytest.mark.parametrize("name", sorted(CALLS))
@pytest.mark.parametrize("requires_grad", [False, True])
def test_dual_tensors_raise(implementation, name, requires_grad):
    with fwAD.dual_level():
        dual = fwAD.make_dual(X.clone().requires_grad_(requires_grad), torch.ones_like(X))
        with pytest.raises(NotImplementedError, match=name + MESSAGE):
            CALLS[name](dual)


@pytest.mark.parametrize("name", sorted(CALLS))
@pytest.mark.parametrize("transform", ["jvp", "jacfwd", "hessian"])
def test_forward_mode_transforms_raise(implementation, name, transform):
    def scalar(x):
        return CALLS[name](x).sum()

    with pytest.raises(NotImplementedError, match=name + MESSAGE):
        if transform == "jvp":
            torch.func.jvp(scalar, (X,), (torch.ones_like(X),))
        else:
            getattr(torch.func, transform)(scalar)(X)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_plain_tensors_inside_a_dual_level_still_work(implementation, name):
    x = X.clone().requires_grad_()
    with fwAD.dual_level():
        out = CALLS[name](x)
    (grad,) = torch.autograd.grad(out.sum(), x)
    assert grad.shape == x.shape


_TAU = torch.tensor(0.5, dtype=torch.float64)

# Every C++ autograd kernel, called as torch.ops.gradext.<op>, with the name of the public op
# its message gives.
DISPATCHER_CALLS = {
    "gaussian_rsample": lambda x: torch.ops.gradext.gaussian_rsample(x, x),
    "_gaussian_rsample_seeded": lambda x: torch.ops.gradext._gaussian_rsample_seeded(x, x, 2, 0, 0),
    "normal_rsample": lambda x: torch.ops.gradext.normal_rsample(x, x.exp()),
    "_normal_rsample_seeded": lambda x: torch.ops.gradext._normal_rsample_seeded(x, x, None, 0, 0),
    "gamma_rsample": lambda x: torch.ops.gradext.gamma_rsample(x.exp(), x.exp()),
    "von_mises_rsample": lambda x: torch.ops.gradext.von_mises_rsample(x, x.exp()),
    "dirichlet_rsample": lambda x: torch.ops.gradext.dirichlet_rsample(x.exp()),
    "gumbel_softmax": lambda x: torch.ops.gradext.gumbel_softmax(x, _TAU, True),
    "gumbel_sigmoid": lambda x: torch.ops.gradext.gumbel_sigmoid(x, _TAU, False),
    "categorical_sample": lambda x: torch.ops.gradext.categorical_sample(x, 2),
    "score_function_loo": lambda x: torch.ops.gradext.score_function_loo(x, x, 0),
    "vimco": lambda x: torch.ops.gradext.vimco(x, x, 0),
    "conditional_relaxation": lambda x: torch.ops.gradext.conditional_relaxation(x, _TAU, False),
}


@requires_extension
@pytest.mark.parametrize("name", sorted(DISPATCHER_CALLS))
@pytest.mark.parametrize("requires_grad", [False, True])
def test_dual_tensors_raise_at_the_dispatcher_op(name, requires_grad):
    """The C++ autograd kernels refuse dual tensors themselves, for callers of the dispatcher op
    that skip the Python entry: a graph node has no forward-mode formula, and with no gradient
    to track no node is built, so the tangent would be dropped."""
    op = name.removeprefix("_").removesuffix("_seeded")
    with fwAD.dual_level():
        dual = fwAD.make_dual(X.clone().requires_grad_(requires_grad), torch.ones_like(X))
        with pytest.raises(NotImplementedError, match=op + MESSAGE):
            DISPATCHER_CALLS[name](dual)

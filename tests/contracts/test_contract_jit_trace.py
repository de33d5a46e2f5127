"""torch.jit.trace over the public ops: the trace records the dispatcher op (fresh noise on
every call of the traced graph), generalizes to other sizes, and gradext's own argument checks
print no TracerWarning (they stand aside under tracing; the C++ ops check every call).
torch.jit.script is not supported (README, "Use"): torch.compile and torch.export are the
supported graph captures."""

from __future__ import annotations

import warnings

import pytest
import torch

import gradext
from helpers.common import requires_extension

pytestmark = requires_extension

TRACED = {
    "gaussian_rsample": (lambda m: gradext.gaussian_rsample(m, m, 3), (3, 6, 5)),
    "normal_rsample": (lambda m: gradext.normal_rsample(m, m.exp(), 3), (3, 6, 5)),
    "gumbel_softmax": (lambda x: gradext.gumbel_softmax(x, tau=0.5, hard=True), (6, 5)),
    "gumbel_sigmoid": (lambda x: gradext.gumbel_sigmoid(x, 0.5), (6, 5)),
    "categorical_sample": (lambda x: gradext.categorical_sample(x, 2)[1], (2, 6)),
    "score_function_loo": (lambda x: gradext.score_function_loo(x, x), (5,)),
    "vimco": (lambda x: gradext.vimco(x, x), (5,)),
}


@pytest.mark.parametrize("name", list(TRACED))
def test_trace_records_the_op_without_gradext_tracer_warnings(name):
    fn, traced_shape = TRACED[name]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        traced = torch.jit.trace(fn, (torch.randn(4, 5),), check_trace=False)
    from_gradext = [w for w in caught if "/gradext/" in w.filename.replace("\\", "/")]
    assert not from_gradext, [f"{w.filename}:{w.lineno}: {w.message}" for w in from_gradext]
    assert f"gradext::{name}" in str(traced.graph)
    x = torch.randn(6, 5)
    out = traced(x)
    assert out.shape == traced_shape
    if name in (
        "gaussian_rsample",
        "normal_rsample",
        "gumbel_softmax",
        "gumbel_sigmoid",
        "categorical_sample",
    ):
        assert not torch.equal(out, traced(x))  # a random op: new noise per call

"""The public API's eager entry (gradext/_custom_op.py) against the registered dispatcher path.

In eager mode the public functions apply their own autograd.Function around the op's kernel
instead of going through the Python autograd kernel that torch.library.register_autograd puts on
the dispatcher (the path torch.compile and direct callers of torch.ops.gradext.* take). Both are
built from the same formulas; these tests hold them to bitwise-equal values and gradients, and
check that the eager entry is the one actually taken."""

from __future__ import annotations

import pytest
import torch

import gradext
from gradext.op_registry import EXAMPLE_SHAPE, OPS
from helpers.common import requires_extension

pytestmark = requires_extension


def _generator(seed=1234):
    return torch.Generator().manual_seed(seed)


def _leaf(*shape, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=dtype).requires_grad_()


def _cases():
    """name -> (inputs factory, public call, registered call); each call returns the tensor to
    differentiate (the other outputs are integer indices or internal state)."""
    ops = torch.ops.gradext
    return {
        "gaussian_rsample K=3, broadcast logvar": (
            lambda: (_leaf(5, 7), _leaf(7, seed=1)),
            lambda mu, lv: gradext.gaussian_rsample(mu, lv, 3, generator=_generator()),
            lambda mu, lv: ops.gaussian_rsample(mu, lv, 3, generator=_generator())[0],
        ),
        "gaussian_rsample one sample": (
            lambda: (_leaf(5, 7), _leaf(5, 7, seed=1)),
            lambda mu, lv: gradext.gaussian_rsample(mu, lv, generator=_generator()),
            lambda mu, lv: ops.gaussian_rsample(mu, lv, None, generator=_generator())[0],
        ),
        "gumbel_softmax hard": (
            lambda: (_leaf(6, 9),),
            lambda x: gradext.gumbel_softmax(x, 0.7, hard=True, generator=_generator()),
            lambda x: ops.gumbel_softmax(x, 0.7, True, generator=_generator())[0],
        ),
        "gumbel_softmax soft": (
            lambda: (_leaf(6, 9),),
            lambda x: gradext.gumbel_softmax(x, 0.7, generator=_generator()),
            lambda x: ops.gumbel_softmax(x, 0.7, False, generator=_generator())[0],
        ),
        "gumbel_sigmoid hard": (
            lambda: (_leaf(6, 9),),
            lambda x: gradext.gumbel_sigmoid(x, 0.5, hard=True, generator=_generator()),
            lambda x: ops.gumbel_sigmoid(x, 0.5, True, generator=_generator())[0],
        ),
        "score_function_loo": (
            lambda: (_leaf(4, 8), _leaf(4, 8, seed=1)),
            lambda f, lp: gradext.score_function_loo(f, lp),
            lambda f, lp: ops.score_function_loo(f, lp, 0),
        ),
        "vimco": (
            lambda: (_leaf(4, 8), _leaf(4, 8, seed=1)),
            lambda lw, lp: gradext.vimco(lw, lp),
            lambda lw, lp: ops.vimco(lw, lp, 0)[0],
        ),
        "categorical_sample": (
            lambda: (_leaf(8, 5),),
            lambda x: gradext.categorical_sample(x, 3, generator=_generator())[1],
            lambda x: ops.categorical_sample(x, 3, generator=_generator())[0],
        ),
    }


CASES = list(_cases())


def _graph_node_names(tensor):
    names, stack, seen = set(), [tensor.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.add(type(node).__name__)
        if hasattr(node, "entry"):  # a node of the eager entry records its op
            names.add(f"eager entry of {node.entry.name}")
        stack.extend(next_node for next_node, _ in node.next_functions)
    return names


@pytest.mark.parametrize("case", CASES)
def test_eager_entry_matches_registered_autograd(case):
    make_inputs, public, registered = _cases()[case]
    inputs = make_inputs()
    out_public = public(*inputs)
    out_registered = registered(*inputs)
    assert torch.equal(out_public, out_registered)
    upstream = torch.randn(out_public.shape, generator=_generator(7), dtype=out_public.dtype)
    grads_public = torch.autograd.grad(out_public, inputs, upstream)
    grads_registered = torch.autograd.grad(out_registered, inputs, upstream)
    for a, b in zip(grads_public, grads_registered):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert torch.equal(a, b)


@pytest.mark.parametrize("case", CASES)
def test_eager_entry_is_taken(case):
    make_inputs, public, registered = _cases()[case]
    inputs = make_inputs()
    op_name = next(name for name in dir(torch.ops.gradext) if case.startswith(name))
    public_nodes = _graph_node_names(public(*inputs))
    assert f"eager entry of gradext::{op_name}" in public_nodes
    assert not any(n.startswith("GeneratedBackwardFor") for n in public_nodes)
    # The dispatcher op keeps torch.library's generated Function (what torch.compile traces).
    registered_nodes = _graph_node_names(registered(*inputs))
    assert any(n.startswith("GeneratedBackwardFor_gradext") for n in registered_nodes)


@pytest.mark.parametrize("case", CASES)
def test_eager_entry_without_grad(case):
    make_inputs, public, registered = _cases()[case]
    inputs = make_inputs()
    with torch.no_grad():
        out = public(*inputs)
    assert out.grad_fn is None and not out.requires_grad
    assert torch.equal(out, public(*inputs).detach())


@pytest.mark.parametrize("case", OPS, ids=lambda case: case.name)
def test_every_registered_op_example_matches_the_dispatcher_path(case):
    """For every op of the registry: the public call (the eager entry) and the dispatcher op
    (torch.library's registered autograd) give bitwise-equal values and gradients."""
    x = torch.randn(*EXAMPLE_SHAPE, generator=_generator(3), dtype=torch.float64)
    leaf_public, leaf_registered = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_public, out_registered = case.example(leaf_public), case.registered(leaf_registered)
    assert torch.equal(out_public, out_registered)
    upstream = torch.randn(out_public.shape, generator=_generator(7), dtype=out_public.dtype)
    (grad_public,) = torch.autograd.grad(out_public, leaf_public, upstream)
    (grad_registered,) = torch.autograd.grad(out_registered, leaf_registered, upstream)
    assert torch.equal(grad_public, grad_registered)
    assert f"eager entry of gradext::{case.name}" in _graph_node_names(out_public)

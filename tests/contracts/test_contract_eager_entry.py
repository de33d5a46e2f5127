"""The public API's autograd paths (gradext/_custom_op.py): the C++ formula and its Python twin.

The public sampling and estimator ops have their autograd kernel in C++
(csrc/ops/<family>_autograd.cpp): an eager call of the public function, a direct call of
torch.ops.gradext.* and torch.compile all take it. It does not serve torch.func, so under its
transforms the public functions apply the same formula written in Python. These tests
hold the public call to the dispatcher op, check that the C++ node is the one taken (no Python
autograd.Function, no torch.library generated one), and hold the Python formula to the C++ one:
bitwise-equal values and gradients."""

from __future__ import annotations

import pytest
import torch

import gradext
from gradext._custom_op import _TransformOp
from gradext.op_registry import EXAMPLE_SHAPE, OPS
from helpers.common import requires_extension, tau_tensor

pytestmark = requires_extension


def _generator(seed=1234):
    return torch.Generator().manual_seed(seed)


def _leaf(*shape, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=dtype).requires_grad_()


def _positive_leaf(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(*shape, generator=g, dtype=torch.float64) * 3 + 0.05).requires_grad_()


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
        "gamma_rsample K=2, broadcast rate": (
            lambda: (_positive_leaf(5, 7), _positive_leaf(7, seed=1)),
            lambda c, r: gradext.gamma_rsample(c, r, 2, generator=_generator()),
            lambda c, r: ops.gamma_rsample(c, r, 2, generator=_generator()),
        ),
        "von_mises_rsample K=2, broadcast concentration": (
            lambda: (_leaf(5, 7), _positive_leaf(7, seed=1)),
            lambda m, c: gradext.von_mises_rsample(m, c, 2, generator=_generator()),
            lambda m, c: ops.von_mises_rsample(m, c, 2, generator=_generator()),
        ),
        "dirichlet_rsample K=3": (
            lambda: (_positive_leaf(5, 7),),
            lambda c: gradext.dirichlet_rsample(c, 3, generator=_generator()),
            lambda c: ops.dirichlet_rsample(c, 3, generator=_generator())[0],
        ),
        "gumbel_softmax hard": (
            lambda: (_leaf(6, 9),),
            lambda x: gradext.gumbel_softmax(x, 0.7, hard=True, generator=_generator()),
            lambda x: ops.gumbel_softmax(x, tau_tensor(0.7), True, generator=_generator())[0],
        ),
        "gumbel_softmax soft": (
            lambda: (_leaf(6, 9),),
            lambda x: gradext.gumbel_softmax(x, 0.7, generator=_generator()),
            lambda x: ops.gumbel_softmax(x, tau_tensor(0.7), False, generator=_generator())[0],
        ),
        "gumbel_sigmoid hard": (
            lambda: (_leaf(6, 9),),
            lambda x: gradext.gumbel_sigmoid(x, 0.5, hard=True, generator=_generator()),
            lambda x: ops.gumbel_sigmoid(x, tau_tensor(0.5), True, generator=_generator())[0],
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


def _graph_nodes(tensor):
    nodes, stack, seen = [], [tensor.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        nodes.append(node)
        stack.extend(next_node for next_node, _ in node.next_functions)
    return nodes


def _graph_node_names(tensor):
    return {node.name() for node in _graph_nodes(tensor)}


def _cpp_nodes(names):
    """gradext's C++ graph nodes (csrc/ops/autograd_node.h), named "gradext::<op>Backward"."""
    return {n for n in names if n.startswith("gradext::")}


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
def test_cpp_autograd_is_taken(case):
    make_inputs, public, registered = _cases()[case]
    inputs = make_inputs()
    public_nodes = _graph_node_names(public(*inputs))
    registered_nodes = _graph_node_names(registered(*inputs))
    assert len(_cpp_nodes(public_nodes)) == 1, public_nodes
    assert _cpp_nodes(public_nodes) == _cpp_nodes(registered_nodes)
    for names in (public_nodes, registered_nodes):
        assert not any("Generated" in n or "_EagerOp" in n or "_TransformOp" in n for n in names)


def _python_formula_cases():
    """name -> (inputs factory, call of the op through the Python formula, same op through the
    dispatcher's C++ autograd); each returns the tensor to differentiate."""
    from gradext import (
        categorical,
        dirichlet,
        gamma,
        gaussian,
        relaxed,
        score_function,
        von_mises,
    )

    def python_formula(entry, *args, **kwargs):
        keyword = (kwargs.get(n, d) for n, d in zip(entry.keyword_names, entry.keyword_defaults))
        return _TransformOp.apply(*args, *keyword, entry)

    ops = torch.ops.gradext
    return {
        "gaussian_rsample K=3, broadcast logvar, seeded": (
            lambda: (_leaf(5, 7), _leaf(7, seed=1)),
            lambda mu, lv: python_formula(
                gaussian._gaussian_rsample, mu, lv, 3, generator=_generator()
            )[0],
            lambda mu, lv: ops.gaussian_rsample(mu, lv, 3, generator=_generator())[0],
        ),
        "gaussian_rsample one sample, mu only": (
            lambda: (_leaf(5, 7), _leaf(5, 7, seed=1).detach()),
            lambda mu, lv: python_formula(
                gaussian._gaussian_rsample, mu, lv, None, generator=_generator()
            )[0],
            lambda mu, lv: ops.gaussian_rsample(mu, lv, None, generator=_generator())[0],
        ),
        "gaussian_rsample K=2, logvar only": (
            lambda: (_leaf(5, 7).detach(), _leaf(5, 7, seed=1)),
            lambda mu, lv: python_formula(
                gaussian._gaussian_rsample, mu, lv, 2, generator=_generator()
            )[0],
            lambda mu, lv: ops.gaussian_rsample(mu, lv, 2, generator=_generator())[0],
        ),
        "gamma_rsample K=3, both parameters": (
            lambda: (_positive_leaf(5, 7), _positive_leaf(7, seed=1)),
            lambda c, r: python_formula(gamma._gamma_rsample, c, r, 3, generator=_generator()),
            lambda c, r: ops.gamma_rsample(c, r, 3, generator=_generator()),
        ),
        "gamma_rsample, rate only": (
            lambda: (_positive_leaf(5, 7).detach(), _positive_leaf(5, 7, seed=1)),
            lambda c, r: python_formula(gamma._gamma_rsample, c, r, None, generator=_generator()),
            lambda c, r: ops.gamma_rsample(c, r, None, generator=_generator()),
        ),
        "von_mises_rsample K=3, both parameters": (
            lambda: (_leaf(5, 7), _positive_leaf(7, seed=1)),
            lambda m, c: python_formula(
                von_mises._von_mises_rsample, m, c, 3, generator=_generator()
            ),
            lambda m, c: ops.von_mises_rsample(m, c, 3, generator=_generator()),
        ),
        "von_mises_rsample, concentration only": (
            lambda: (_leaf(5, 7).detach(), _positive_leaf(5, 7, seed=1)),
            lambda m, c: python_formula(
                von_mises._von_mises_rsample, m, c, None, generator=_generator()
            ),
            lambda m, c: ops.von_mises_rsample(m, c, None, generator=_generator()),
        ),
        "dirichlet_rsample K=2, float32": (
            lambda: (_positive_leaf(6, 5).float().detach().requires_grad_(),),
            lambda c: python_formula(dirichlet._dirichlet_rsample, c, 2, generator=_generator())[0],
            lambda c: ops.dirichlet_rsample(c, 2, generator=_generator())[0],
        ),
        "gumbel_softmax hard": (
            lambda: (_leaf(6, 9),),
            lambda x: python_formula(
                relaxed._gumbel_softmax, x, tau_tensor(0.7), True, generator=_generator()
            )[0],
            lambda x: ops.gumbel_softmax(x, tau_tensor(0.7), True, generator=_generator())[0],
        ),
        "gumbel_sigmoid soft": (
            lambda: (_leaf(6, 9),),
            lambda x: python_formula(
                relaxed._gumbel_sigmoid, x, tau_tensor(0.5), False, generator=_generator()
            )[0],
            lambda x: ops.gumbel_sigmoid(x, tau_tensor(0.5), False, generator=_generator())[0],
        ),
        "score_function_loo, float32 log_prob": (
            lambda: (_leaf(4, 8), _leaf(4, 8, seed=1, dtype=torch.float32)),
            lambda f, lp: python_formula(score_function._score_function_loo, f, lp, 0),
            lambda f, lp: ops.score_function_loo(f, lp, 0),
        ),
        "vimco, dim 1": (
            lambda: (_leaf(4, 8), _leaf(4, 8, seed=1)),
            lambda lw, lp: python_formula(score_function._vimco, lw, lp, 1)[0],
            lambda lw, lp: ops.vimco(lw, lp, 1)[0],
        ),
        "categorical_sample": (
            lambda: (_leaf(8, 5),),
            lambda x: python_formula(categorical._categorical_sample, x, 3, generator=_generator())[
                0
            ],
            lambda x: ops.categorical_sample(x, 3, generator=_generator())[0],
        ),
    }


@pytest.mark.parametrize("case", list(_python_formula_cases()))
def test_python_formula_matches_cpp_autograd(case):
    """The formula torch.func gets (Python) against the one everything else gets (C++)."""
    make_inputs, python_formula, cpp = _python_formula_cases()[case]
    inputs = make_inputs()
    out_python, out_cpp = python_formula(*inputs), cpp(*inputs)
    assert torch.equal(out_python, out_cpp)
    differentiable = [t for t in inputs if t.requires_grad]
    upstream = torch.randn(out_cpp.shape, generator=_generator(7), dtype=out_cpp.dtype)
    grads_python = torch.autograd.grad(out_python, differentiable, upstream)
    grads_cpp = torch.autograd.grad(out_cpp, differentiable, upstream)
    for a, b in zip(grads_python, grads_cpp):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert torch.equal(a, b)
    if case == "gaussian_rsample one sample, mu only":
        assert torch.equal(grads_cpp[0], upstream)  # d z / d mu = 1, nothing summed


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
    """For every op of the registry: the public call and the dispatcher op give bitwise-equal
    values and gradients, through the one C++ autograd node."""
    x = torch.randn(*EXAMPLE_SHAPE, generator=_generator(3), dtype=torch.float64)
    leaf_public, leaf_registered = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_public, out_registered = case.example(leaf_public), case.registered(leaf_registered)
    assert torch.equal(out_public, out_registered)
    upstream = torch.randn(out_public.shape, generator=_generator(7), dtype=out_public.dtype)
    (grad_public,) = torch.autograd.grad(out_public, leaf_public, upstream)
    (grad_registered,) = torch.autograd.grad(out_registered, leaf_registered, upstream)
    assert torch.equal(grad_public, grad_registered)
    assert len(_cpp_nodes(_graph_node_names(out_public))) == 1


@pytest.mark.parametrize("case", OPS, ids=lambda case: case.name)
def test_graph_node_frees_its_saved_tensors(case):
    """The C++ node releases what it saved after a backward without retain_graph (a second
    backward raises torch's error), and keeps it with retain_graph (equal gradients twice)."""
    leaf = torch.randn(*EXAMPLE_SHAPE, generator=_generator(3), dtype=torch.float64)
    leaf.requires_grad_()
    out = case.registered(leaf)
    upstream = torch.randn(out.shape, generator=_generator(7), dtype=out.dtype)
    (first,) = torch.autograd.grad(out, leaf, upstream, retain_graph=True)
    (second,) = torch.autograd.grad(out, leaf, upstream)
    assert torch.equal(first, second)
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        torch.autograd.grad(out, leaf, upstream)


@pytest.mark.parametrize("case", OPS, ids=lambda case: case.name)
def test_graph_node_saves_through_saved_tensor_hooks(case):
    """What the node saves goes through torch.autograd.graph.saved_tensors_hooks (what
    activation offloading and checkpointing use), and the unpacked tensors give the same
    gradient."""
    leaf = torch.randn(*EXAMPLE_SHAPE, generator=_generator(3), dtype=torch.float64)
    leaf.requires_grad_()
    (reference,) = torch.autograd.grad(case.registered(leaf).sum(), leaf)
    packed, unpacked = [], []

    def pack(tensor):
        packed.append(tensor.shape)
        return tensor.clone()

    def unpack(tensor):
        unpacked.append(tensor.shape)
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        out = case.registered(leaf)
    (grad,) = torch.autograd.grad(out.sum(), leaf)
    assert packed and unpacked
    assert torch.equal(grad, reference)


@pytest.mark.filterwarnings("ignore:Anomaly Detection has been enabled")
@pytest.mark.parametrize("case", OPS, ids=lambda case: case.name)
def test_graph_node_records_anomaly_tracebacks(case):
    """Under anomaly detection the node carries the forward's traceback, as torch's own nodes
    do (the autograd engine prints it when the backward fails)."""
    leaf = torch.randn(*EXAMPLE_SHAPE, generator=_generator(3), dtype=torch.float64)
    leaf.requires_grad_()
    with torch.autograd.detect_anomaly(check_nan=False):
        out = case.registered(leaf)
    node = next(n for n in _graph_nodes(out) if n.name().startswith("gradext::"))
    assert "traceback_" in node.metadata

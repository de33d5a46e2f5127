"""vimco: the bound and both gradients against the K x K leave-one-out oracle, stability at
extreme log weights, layouts, dtypes, errors, fallback."""

from __future__ import annotations

import pytest
import torch

import gradext
from helpers.common import ALL_DTYPES, requires_extension, tolerance
from helpers.oracles import vimco_bound, vimco_gradients

SHAPES_AND_DIMS = [
    ((2, 7), 0),
    ((16, 300), 0),
    ((300, 16), -1),
    ((5, 9, 130), 1),
    ((3, 4, 5, 6), -2),
    ((64, 3), 0),
]


def _inputs(shape, dtype, device, scale=3.0):
    log_weights = (scale * torch.randn(shape, device=device)).to(dtype).requires_grad_()
    log_prob = torch.randn(shape, device=device).to(dtype).requires_grad_()
    return log_weights, log_prob


def _check_against_oracle(log_weights, log_prob, dim, **tol):
    out = gradext.vimco(log_weights, log_prob, dim)
    torch.testing.assert_close(out.double(), vimco_bound(log_weights, dim), **tol)
    grad = torch.randn(out.shape, device=out.device).to(out.dtype)
    got = torch.autograd.grad(out, (log_weights, log_prob), grad)
    expected = vimco_gradients(log_weights, grad, dim)
    for name, g, e in zip(("log_weights", "log_prob"), got, expected):
        assert torch.isfinite(g).all(), name
        torch.testing.assert_close(g.double(), e, **tol, msg=lambda m: f"d {name}: {m}")


@pytest.mark.parametrize("shape, dim", SHAPES_AND_DIMS)
def test_matches_oracle(implementation, device, shape, dim):
    log_weights, log_prob = _inputs(shape, torch.float64, device)
    _check_against_oracle(log_weights, log_prob, dim, **tolerance(torch.float64))


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("dim", [0, -1])
def test_every_dtype(implementation, device, dtype, dim):
    log_weights, log_prob = _inputs((10, 129) if dim == 0 else (129, 10), dtype, device)
    out = gradext.vimco(log_weights, log_prob, dim)
    assert out.dtype == dtype
    # Gradients of O(1) with O(1) inputs: the dtype's own tolerance, a little wider for the
    # half types, whose inputs are already rounded.
    tol = (
        tolerance(dtype)
        if dtype in (torch.float32, torch.float64)
        else dict(rtol=4 * tolerance(dtype)["rtol"], atol=4 * tolerance(dtype)["atol"])
    )
    _check_against_oracle(log_weights, log_prob, dim, **tol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_stable_at_extreme_log_weights(implementation, device, dtype):
    """Log weights of +-1e4 (exp overflows in any float type) and one weight dwarfing the rest
    (where S - w_k cancels to 0): finite everywhere and equal to the float64 oracle to the
    inputs' precision (float32 carries about 1e-3 absolute at 1e4)."""
    rows = torch.tensor(
        [
            [1e4, -1e4, 0.0, 5.0],
            [-1e4, -1e4, -1e4, -1e4 + 1.0],
            [1e4, 1e4, 1e4, 1e4],
            [80.0, 0.0, 0.0, 0.0],  # exp(80) overflows float32's sum of the others' scale
            [30.0, -30.0, 1.0, 2.0],  # w_max / S = 1 - 1e-13: S - w_max cancels in float32
            [1e4, 1e4 - 1e-2, -1e4, 0.0],  # the top two nearly tied
        ],
        dtype=torch.float64,
        device=device,
    )
    log_weights = rows.t().contiguous().to(dtype).requires_grad_()  # samples along dim 0
    log_prob = torch.zeros_like(log_weights, requires_grad=True)
    tol = dict(rtol=1e-12, atol=1e-9) if dtype == torch.float64 else dict(rtol=1e-6, atol=4e-3)
    _check_against_oracle(log_weights, log_prob, 0, **tol)


def test_signal_of_a_dominant_sample(implementation):
    """K = 2, log weights (a, b) with a >> b: L - L_{-0} = (a - b) + log1p(exp(b - a)) - log 2
    exactly; a naive log(S - w_0 + ...) in float32 loses it entirely."""
    a, b = 40.0, -3.0
    log_weights = torch.tensor([a, b], requires_grad=True)
    log_prob = torch.zeros(2, requires_grad=True)
    out = gradext.vimco(log_weights, log_prob, 0)
    (grad_log_prob,) = torch.autograd.grad(out, log_prob)
    expected = (
        (a - b)
        + torch.log1p(torch.exp(torch.tensor(b - a, dtype=torch.float64)))
        - torch.log(torch.tensor(2.0, dtype=torch.float64))
    )
    torch.testing.assert_close(grad_log_prob[0].double(), expected, rtol=1e-6, atol=0)


def test_gradcheck_of_the_pathwise_part(implementation, device):
    """Finite differences check d log_weights (the bound's true derivative); d log_prob is an
    estimator, checked against the oracle."""
    log_weights, log_prob = _inputs((5, 3, 4), torch.float64, device)
    assert torch.autograd.gradcheck(
        lambda w: gradext.vimco(w, log_prob.detach(), 1), (log_weights,)
    )


@pytest.mark.parametrize("wanted", ["log_weights", "log_prob"])
def test_one_input_requires_grad(implementation, device, wanted):
    log_weights, log_prob = _inputs((6, 20), torch.float64, device)
    inputs = {"log_weights": log_weights, "log_prob": log_prob}
    for name, tensor in inputs.items():
        tensor.requires_grad_(name == wanted)
    out = gradext.vimco(log_weights, log_prob, 0)
    grad = torch.randn_like(out)
    (got,) = torch.autograd.grad(out, inputs[wanted], grad)
    expected = vimco_gradients(log_weights, grad, 0)[0 if wanted == "log_weights" else 1]
    torch.testing.assert_close(got, expected)


def test_empty_inputs(implementation, device):
    log_weights, log_prob = _inputs((4, 0), torch.float32, device)
    out = gradext.vimco(log_weights, log_prob, 0)
    assert out.shape == (0,)
    grads = torch.autograd.grad(out.sum(), (log_weights, log_prob))
    assert all(g.shape == (4, 0) for g in grads)


def test_errors(implementation):
    x = torch.randn(3, 5)
    with pytest.raises(
        ValueError, match=r"vimco: needs K >= 2 samples along dim 1 of log_weights.*got K = 1"
    ):
        gradext.vimco(x[:, :1], x[:, :1], 1)
    with pytest.raises(
        ValueError, match=r"log_weights of shape \(3, 5\) and log_prob of shape \(5, 3\)"
    ):
        gradext.vimco(x, x.t(), 0)
    with pytest.raises(
        TypeError, match=r"log_weights must be a floating-point tensor, got dtype torch.int32"
    ):
        gradext.vimco(x.int(), x, 0)
    with pytest.raises(
        IndexError, match=r"dim -3 is out of range for log_weights with 2 dimensions"
    ):
        gradext.vimco(x, x, -3)


@requires_extension
def test_kernels_save_log_weights_and_six_scalars_per_datapoint():
    """What autograd keeps for the backward: the log weights and [6, datapoints]."""
    log_weights, log_prob = _inputs((16, 300), torch.float32, "cpu")
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(
        lambda t: saved.append(tuple(t.shape)) or t, lambda t: t
    ):
        gradext.vimco(log_weights, log_prob, 0)
    assert sorted(saved) == [(6, 300), (16, 300)]

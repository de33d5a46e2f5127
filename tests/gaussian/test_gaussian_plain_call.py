"""The short ways through a Gaussian sampling call, and that they change nothing:

- gradext/gaussian.py's plain call (_plain_call): a training step's call skips the Python
  argument checks and the eager entry, because every one of them passes for it. Each input that a
  check or the entry treats differently must leave the short way.
- csrc/ops/gaussian_autograd.cpp's grad-free call: with no gradient to track the autograd kernel
  calls the op below autograd without building its Function.
"""

from __future__ import annotations

import numpy
import pytest
import torch
from torch.autograd import forward_ad

import gradext
from gradext import _extension, gaussian
from helpers.common import requires_extension

pytestmark = requires_extension


def _pair(shape=(8, 5), dtype=torch.float32, requires_grad=True):
    mu = torch.randn(shape, dtype=dtype, requires_grad=requires_grad)
    logvar = torch.randn(shape, dtype=dtype, requires_grad=requires_grad)
    return mu, logvar


def test_a_training_step_takes_the_plain_call():
    mu, logvar = _pair()
    assert gaussian._plain_call(mu, logvar, None, None)
    assert gaussian._plain_call(mu, logvar, (), None)  # Normal.rsample's default sample_shape
    assert gaussian._plain_call(mu, logvar, torch.Size(), None)
    for dtype in (torch.float64, torch.float16, torch.bfloat16):
        assert gaussian._plain_call(*_pair(dtype=dtype), None, None)


@pytest.mark.parametrize(
    "case",
    [
        "generator",
        "num_samples",
        "sample_shape",
        "parameter",
        "broadcast",
        "float8",
        "integer",
        "not_a_tensor",
        "nested",
        "meta_device",
        "numpy_count",
        "empty_array_count",
        "list_shape",
    ],
)
def test_what_a_check_or_the_entry_treats_apart_leaves_the_plain_call(case):
    mu, logvar = _pair()
    num_samples, generator = None, None
    if case == "generator":
        generator = torch.Generator().manual_seed(0)
    elif case == "num_samples":
        num_samples = 3
    elif case == "sample_shape":
        num_samples = (2, 3)
    elif case == "parameter":
        mu = torch.nn.Parameter(mu.detach())
    elif case == "broadcast":
        logvar = logvar[0].detach()
    elif case == "float8":
        mu = mu.detach().to(torch.float8_e4m3fn)
    elif case == "integer":
        mu = torch.zeros(8, 5, dtype=torch.long)
    elif case == "not_a_tensor":
        mu = [0.0] * 5
    elif case == "nested":
        mu = torch.nested.nested_tensor([torch.zeros(2), torch.zeros(3)])
    elif case == "meta_device":
        logvar = torch.zeros(8, 5, device="meta")
    elif case == "numpy_count":  # compares with () elementwise: must not be asked as a shape
        num_samples = numpy.int64(2)
    elif case == "empty_array_count":
        num_samples = numpy.zeros(0)
    elif case == "list_shape":
        num_samples = []
    assert not gaussian._plain_call(mu, logvar, num_samples, generator)


@pytest.mark.parametrize("count", [numpy.int64(2), numpy.zeros(0), 2.0])
def test_a_count_of_another_type_gets_the_checked_path_s_error(count):
    mu, logvar = _pair()
    with pytest.raises(TypeError, match="num_samples must be None, an int or a sample_shape"):
        gradext.gaussian_rsample(mu, logvar, count)


def test_forward_ad_and_torch_func_leave_the_plain_call():
    mu, logvar = _pair(requires_grad=False)
    with forward_ad.dual_level():
        assert not gaussian._plain_call(mu, logvar, None, None)
    seen = []

    def record(m):
        seen.append(gaussian._plain_call(m, logvar, None, None))
        return m

    torch.func.grad(lambda m: record(m).sum())(mu)
    assert seen == [False]


def test_the_plain_call_refuses_forward_ad_as_the_checks_do():
    mu, logvar = _pair(requires_grad=False)
    with forward_ad.dual_level():
        dual = forward_ad.make_dual(mu, torch.ones_like(mu))
        with pytest.raises(NotImplementedError, match="forward-mode AD"):
            gradext.gaussian_rsample(dual, logvar)


@pytest.mark.parametrize("op", ["gaussian_rsample", "normal_rsample"])
def test_plain_and_checked_calls_agree_bitwise(op):
    """The same draw through the plain call and through the checked path (a subclass input takes
    it): the same sample and the same gradients, bitwise."""
    mu, spread = _pair()
    spread = spread.detach().abs().requires_grad_() if op == "normal_rsample" else spread
    fn = getattr(gradext, op)
    torch.manual_seed(7)
    plain = fn(mu, spread)
    plain_grads = torch.autograd.grad(plain, (mu, spread), torch.ones_like(plain))
    mu_parameter = torch.nn.Parameter(mu.detach().clone())
    assert not gaussian._plain_call(mu_parameter, spread, None, None)
    torch.manual_seed(7)
    checked = fn(mu_parameter, spread)
    checked_grads = torch.autograd.grad(checked, (mu_parameter, spread), torch.ones_like(checked))
    assert torch.equal(plain, checked)
    for a, b in zip(plain_grads, checked_grads):
        assert torch.equal(a, b)


@pytest.mark.parametrize("grad_off", ["no_grad", "inference_mode", "no_input_requires_grad"])
def test_the_grad_free_call_draws_what_the_tracked_call_draws(grad_off):
    """The autograd kernel's grad-free shortcut: the same sample and rng_state as the tracked
    call of the same (seed, offset), for the sampling op and its seeded twin, with no graph."""
    mu, logvar = _pair()
    sample = torch.ops.gradext.gaussian_rsample.default
    seeded = torch.ops.gradext._gaussian_rsample_seeded.default
    torch.manual_seed(3)
    tracked, tracked_state = sample(mu, logvar, None)
    tracked_seeded, _ = seeded(mu, logvar, 2, 11, 4)
    assert tracked.grad_fn is not None
    if grad_off == "no_input_requires_grad":
        mu, logvar = mu.detach(), logvar.detach()
        context = torch.enable_grad()
    else:
        context = torch.no_grad() if grad_off == "no_grad" else torch.inference_mode()
    torch.manual_seed(3)
    with context:
        free, free_state = sample(mu, logvar, None)
        free_seeded, _ = seeded(mu, logvar, 2, 11, 4)
    assert free.grad_fn is None and free_seeded.grad_fn is None
    assert torch.equal(free, tracked.detach())
    assert torch.equal(free_state, tracked_state)
    assert torch.equal(free_seeded, tracked_seeded.detach())


def test_force_fallback_leaves_the_plain_call_and_restores_it():
    """The plain call reads whether the CPU has kernels from a flag that force_fallback keeps in
    step: inside the block the call takes the checked path (and so the fallback), after it the
    short way again."""
    mu, logvar = _pair()
    with _extension.force_fallback():
        assert not gaussian._plain_call(mu, logvar, None, None)
        with _extension.force_fallback():  # nested blocks restore the outer state
            pass
        assert not gaussian._plain_call(mu, logvar, None, None)
    assert gaussian._plain_call(mu, logvar, None, None)


def test_the_normal_class_accepts_every_sample_shape_form_as_before():
    """distributions.Normal.rsample goes to normal_rsample without _FusedSampler's frame: a
    torch.Size, a tuple and a list give the same draw, and a bad shape names the class."""
    loc = torch.randn(4, 3)
    scale = torch.rand(4, 3) + 0.5
    draws = []
    for shape in (torch.Size([2]), (2,), [2]):
        torch.manual_seed(3)
        draws.append(gradext.distributions.Normal(loc, scale).rsample(shape))
    assert draws[0].shape == (2, 4, 3)
    assert all(torch.equal(draws[0], d) for d in draws[1:])
    with pytest.raises(TypeError, match="Normal.rsample: sample_shape must be"):
        gradext.distributions.Normal(loc, scale).rsample(2.5)

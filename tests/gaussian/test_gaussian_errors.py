"""Bad input to gaussian_rsample: each error has the right type and names the argument."""

from __future__ import annotations

import pytest
import torch

import gradext
from helpers.common import requires_cuda, requires_extension


def test_integer_mu(implementation):
    with pytest.raises(
        TypeError,
        match=r"gaussian_rsample: mu must be a floating-point tensor, got dtype torch.int64",
    ):
        gradext.gaussian_rsample(torch.zeros(3, dtype=torch.long), torch.zeros(3))


def test_integer_logvar(implementation):
    with pytest.raises(
        TypeError, match=r"logvar must be a floating-point tensor, got dtype torch.int32"
    ):
        gradext.gaussian_rsample(torch.zeros(3), torch.zeros(3, dtype=torch.int32))


def test_not_a_tensor(implementation):
    with pytest.raises(TypeError, match=r"mu must be a torch.Tensor, got list"):
        gradext.gaussian_rsample([0.0, 1.0], torch.zeros(2))


def test_shapes_that_do_not_broadcast(implementation):
    with pytest.raises(
        ValueError, match=r"mu of shape \(4, 3\) and logvar of shape \(4,\) do not broadcast"
    ):
        gradext.gaussian_rsample(torch.zeros(4, 3), torch.zeros(4))


@pytest.mark.parametrize("bad", [0, -2])
def test_num_samples_below_one(implementation, bad):
    with pytest.raises(ValueError, match=rf"num_samples must be >= 1, got {bad}"):
        gradext.gaussian_rsample(torch.zeros(3), torch.zeros(3), bad)


@pytest.mark.parametrize("bad", [2.0, True, "3"])
def test_num_samples_not_an_int(implementation, bad):
    with pytest.raises(TypeError, match=r"num_samples must be None, an int or a sample_shape"):
        gradext.gaussian_rsample(torch.zeros(3), torch.zeros(3), bad)


def test_generator_of_wrong_type(implementation):
    with pytest.raises(TypeError, match=r"generator must be a torch.Generator or None, got int"):
        gradext.gaussian_rsample(torch.zeros(3), torch.zeros(3), generator=0)


def test_tensors_on_different_devices(implementation):
    meta = torch.zeros(3, device="meta")
    with pytest.raises(ValueError, match=r"mu is on cpu but logvar is on meta"):
        gradext.gaussian_rsample(torch.zeros(3), meta)


@requires_cuda
def test_tensors_on_cpu_and_cuda(implementation):
    with pytest.raises(ValueError, match=r"mu is on cpu but logvar is on cuda:0"):
        gradext.gaussian_rsample(torch.zeros(3), torch.zeros(3, device="cuda"))


@requires_cuda
def test_generator_on_wrong_device(implementation):
    with pytest.raises(ValueError, match=r"generator is on cpu but the inputs are on cuda:0"):
        gradext.gaussian_rsample(
            torch.zeros(3, device="cuda"),
            torch.zeros(3, device="cuda"),
            generator=torch.Generator(),
        )


def test_meta_inputs_take_any_generator(implementation):
    """Meta tensors draw nothing (shape propagation), so a CPU generator goes with them: torch
    cannot construct a meta generator. A real device mismatch: tests/contracts."""
    meta = torch.zeros(3, device="meta")
    z = gradext.gaussian_rsample(meta, meta, 2, generator=torch.Generator())
    assert z.device.type == "meta" and z.shape == (2, 3)


@requires_extension
def test_op_called_directly_checks_too():
    """The dispatcher op validates on its own (it can be called without the Python wrapper)."""
    with pytest.raises(TypeError, match=r"mu must be a floating-point tensor"):
        torch.ops.gradext.gaussian_rsample(torch.zeros(3, dtype=torch.long), torch.zeros(3))
    with pytest.raises(ValueError, match=r"do not broadcast"):
        torch.ops.gradext.gaussian_rsample(torch.zeros(4, 3), torch.zeros(4))
    with pytest.raises(ValueError, match=r"num_samples must be None or >= 1, got 0"):
        torch.ops.gradext.gaussian_rsample(torch.zeros(3), torch.zeros(3), 0)
    with pytest.raises(RuntimeError, match=r"rng_state must be the int64 tensor of 2 elements"):
        torch.ops.gradext._gaussian_rsample_backward(
            torch.zeros(3), torch.zeros(3), torch.zeros(3), [3], False, True
        )

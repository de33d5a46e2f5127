"""Argument checks shared by the public ops: each error names the argument and its value."""

from __future__ import annotations

import math
import numbers
import operator

import numpy
import torch
from torch.autograd import forward_ad


def check_tensor(op: str, name: str, value) -> None:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{op}: {name} must be a torch.Tensor, got {type(value).__name__}")


# The dtypes every kernel and the fallback compute in (the half types in float32). float8 and
# other floating types are refused here rather than inside a kernel's dispatch.
FLOATING_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)

# The largest count an op's int argument can carry (the dispatcher's int is int64).
INT64_MAX = 2**63 - 1

# The longest row of the row-wise ops (gumbel_softmax, categorical_sample): the CPU kernels
# index a row with int32 (csrc/ops/row_length.h).
MAX_ROW_LENGTH = 2**31 - 1

# The most samples of the leave-one-out estimators: the kernels count them with int32
# (csrc/ops/score_function.cpp); the fallback keeps the same limit, so both paths accept the same
# inputs.
MAX_SAMPLES = 2**31 - 1


def check_floating(op: str, name: str, value: torch.Tensor) -> None:
    check_tensor(op, name, value)
    if value.is_nested:
        raise TypeError(f"{op}: {name} must be a strided tensor, got a nested tensor")
    if value.dtype not in FLOATING_DTYPES:
        raise TypeError(
            f"{op}: {name} must be a floating-point tensor, got dtype {value.dtype} "
            "(supported: float32, float64, float16, bfloat16)"
        )


def tracing() -> bool:
    """Under torch.jit.trace sizes are traced values, and a Python comparison of them prints a
    TracerWarning; the shape checks then stand aside (they only raise, they change nothing the
    trace records) and the C++ ops' own checks, which run on every call of the traced graph,
    catch what they would."""
    return torch.jit.is_tracing()


def check_row_length(op: str, name: str, categories: int) -> None:
    if tracing():
        return
    if categories > MAX_ROW_LENGTH:
        raise ValueError(
            f"{op}: rows of at most 2^31 - 1 categories are supported, got {categories} "
            f"along the category dim of {name}"
        )


def check_sample_count(op: str, samples: int) -> None:
    if tracing():
        return
    if samples > MAX_SAMPLES:
        raise ValueError(f"{op}: at most 2^31 - 1 samples along dim, got {samples}")


def check_same_device(op: str, **tensors: torch.Tensor) -> None:
    # Plain loops, no unpacking: every public call runs this (about a microsecond saved).
    names = iter(tensors)
    first_name = next(names)
    device = tensors[first_name].device
    for name in names:
        if tensors[name].device != device:
            raise ValueError(
                f"{op}: {first_name} is on {device} but {name} is on {tensors[name].device}; "
                "all tensor arguments must be on the same device"
            )


def check_broadcastable(op: str, **tensors: torch.Tensor) -> torch.Size:
    shapes = [t.shape for t in tensors.values()]
    first = shapes[0]
    if tracing():
        return first
    for shape in shapes[1:]:
        if shape != first:
            break
    else:
        return first  # the common case, without torch.broadcast_shapes' cost (tens of us here)
    try:
        return torch.broadcast_shapes(*(t.shape for t in tensors.values()))
    except RuntimeError:
        shapes = " and ".join(f"{name} of shape {tuple(t.shape)}" for name, t in tensors.items())
        raise ValueError(f"{op}: {shapes} do not broadcast") from None


def positive_parameter(op: str, name: str, value, like: torch.Tensor) -> torch.Tensor:
    """A positive distribution parameter (a rate, a concentration) as the ops take it: a tensor
    (floating, checked) or a number, which becomes a 0-dim tensor of `like`'s dtype and device,
    checked here to be positive and finite, where that costs no pass over data."""
    if isinstance(value, torch.Tensor):
        check_floating(op, name, value)
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{op}: {name} must be a tensor or a real number, got {type(value).__name__}"
        )
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{op}: {name} must be positive and finite, got {value}")
    return torch.full((), float(value), dtype=like.dtype, device=like.device)


def sample_count(op: str, value) -> tuple:
    """The samplers' num_samples as (the count the op takes, the leading sample dims to give its
    output): None or an int K as they are (K samples on one leading dim), or a sample_shape as
    torch.distributions takes it, a tuple or torch.Size: () is one sample without a sample dim,
    (K,) is K, and a longer shape is its product, drawn in one call and shaped back."""
    if isinstance(value, (tuple, list)):  # torch.Size is a tuple
        shape = []
        for size in value:
            if isinstance(size, (bool, numpy.bool_)):
                raise TypeError(f"{op}: num_samples as a sample_shape holds ints, got bool")
            try:
                shape.append(operator.index(size))
            except TypeError:
                raise TypeError(
                    f"{op}: num_samples as a sample_shape holds ints, got {type(size).__name__}"
                ) from None
        if not shape:
            return None, None
        count = math.prod(shape)
        if count < 1:
            raise ValueError(f"{op}: num_samples must hold at least one sample, got {tuple(shape)}")
        _check_count_value(op, "num_samples", count, 1, "None, an int or a sample_shape")
        return count, tuple(shape)
    if value is not None:
        _check_count_value(op, "num_samples", value, 1, "None, an int or a sample_shape")
    return value, None


def with_sample_dims(x: torch.Tensor, sample_dims) -> torch.Tensor:
    """x with its one leading sample dim shaped as `sample_dims` (sample_count's second value)."""
    if sample_dims is None or len(sample_dims) == 1:
        return x
    return x.reshape(*sample_dims, *x.shape[1:])


def check_count(op: str, name: str, value, minimum: int = 1) -> None:
    _check_count_value(op, name, value, minimum, "an int")


def _check_count_value(op: str, name: str, value, minimum: int, expected: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{op}: {name} must be {expected}, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {value}")
    if value > INT64_MAX:
        raise ValueError(f"{op}: {name} must be at most 2^63 - 1 (an int64), got {value}")


def as_dim(op: str, dim, name: str, tensor: torch.Tensor) -> int:
    """dim as an int: anything with __index__ (numpy integers too) that torch takes, not a bool;
    checked against tensor's number of dimensions."""
    if isinstance(dim, (bool, numpy.bool_)):
        raise TypeError(f"{op}: dim must be an int, got {type(dim).__name__}")
    try:
        dim = operator.index(dim)
    except TypeError:
        raise TypeError(f"{op}: dim must be an int, got {type(dim).__name__}") from None
    if not -tensor.dim() <= dim < tensor.dim():
        raise IndexError(
            f"{op}: dim {dim} is out of range for {name} with {tensor.dim()} dimensions"
        )
    return dim


def as_bool(op: str, name: str, value) -> bool:
    """A flag as a bool. F.gumbel_softmax only tests `if hard:`, so code written for it passes
    bools, 0 and 1, numpy bools and one-element bool or integer tensors: all are taken; other
    values (a float, a string, a longer tensor) are a TypeError rather than a guess."""
    if isinstance(value, bool):
        return value
    if isinstance(value, torch.Tensor):
        if value.numel() == 1 and (value.dtype == torch.bool or not value.is_floating_point()):
            return bool(value.item())
    elif isinstance(value, numpy.bool_) or (
        isinstance(value, numbers.Integral) and value in (0, 1)
    ):
        return bool(value)
    raise TypeError(
        f"{op}: {name} must be a bool (or 0, 1, a numpy bool, a one-element bool tensor), "
        f"got {value!r} of type {type(value).__name__}"
    )


def check_generator(op: str, generator, device: torch.device) -> None:
    if generator is None:
        return
    if not isinstance(generator, torch.Generator):
        raise TypeError(
            f"{op}: generator must be a torch.Generator or None, got {type(generator).__name__}"
        )
    # Meta tensors draw nothing (shape propagation only), so any generator goes with them.
    if generator.device.type != device.type and device.type != "meta":
        raise ValueError(
            f"{op}: generator is on {generator.device} but the inputs are on {device}; "
            f"pass a generator created with torch.Generator(device='{device.type}')"
        )


def check_no_forward_ad(op: str, *tensors) -> None:
    """Forward-mode AD is refused on every path, never answered with a dropped tangent.

    The kernels' ops have reverse-mode formulas only; a dual tensor's tangent would be lost (a
    tangent of None, and gradcheck(check_forward_ad=True) failing), so dual tensors of
    torch.autograd.forward_ad and torch.func's jvp, jacfwd and hessian raise here, on the
    fallback too (one contract for every path). Cheap when unused: one integer compare, and the
    transform stack is read only while a torch.func transform is active."""
    if forward_ad._current_level >= 0 and any(
        isinstance(t, torch.Tensor) and forward_ad.unpack_dual(t).tangent is not None
        for t in tensors
    ):
        raise NotImplementedError(_forward_ad_message(op))
    if torch._C._are_functorch_transforms_active() and any(
        interpreter.key() == torch._C._functorch.TransformType.Jvp
        for interpreter in torch._C._functorch.get_interpreter_stack()
    ):
        raise NotImplementedError(_forward_ad_message(op))


def _forward_ad_message(op: str) -> str:
    return (
        f"{op}: forward-mode AD (forward_ad dual tensors, torch.func.jvp, jacfwd, hessian) is "
        "not supported. Use reverse mode: backward(), torch.autograd.grad, torch.func.grad, "
        "vjp or jacrev (second derivatives: jacrev(jacrev(f)) or create_graph=True)."
    )

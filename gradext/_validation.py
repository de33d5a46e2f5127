"""Argument checks shared by the public ops: each error names the argument and its value."""

from __future__ import annotations

import torch


def check_tensor(op: str, name: str, value) -> None:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{op}: {name} must be a torch.Tensor, got {type(value).__name__}")


def check_floating(op: str, name: str, value: torch.Tensor) -> None:
    check_tensor(op, name, value)
    if not value.dtype.is_floating_point:
        raise TypeError(f"{op}: {name} must be a floating-point tensor, got dtype {value.dtype}")


def check_same_device(op: str, **tensors: torch.Tensor) -> None:
    (first_name, first), *rest = tensors.items()
    for name, tensor in rest:
        if tensor.device != first.device:
            raise ValueError(
                f"{op}: {first_name} is on {first.device} but {name} is on {tensor.device}; "
                "all tensor arguments must be on the same device"
            )


def check_broadcastable(op: str, **tensors: torch.Tensor) -> torch.Size:
    first, *rest = (t.shape for t in tensors.values())
    if all(shape == first for shape in rest):
        return first  # the common case, without torch.broadcast_shapes' cost (tens of us here)
    try:
        return torch.broadcast_shapes(*(t.shape for t in tensors.values()))
    except RuntimeError:
        shapes = " and ".join(f"{name} of shape {tuple(t.shape)}" for name, t in tensors.items())
        raise ValueError(f"{op}: {shapes} do not broadcast") from None


def check_optional_count(op: str, name: str, value, minimum: int = 1) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{op}: {name} must be None or an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {value}")


def check_count(op: str, name: str, value, minimum: int = 1) -> None:
    if value is None:
        raise TypeError(f"{op}: {name} must be an int, got None")
    check_optional_count(op, name, value, minimum)


def check_dim(op: str, dim, name: str, tensor: torch.Tensor) -> None:
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise TypeError(f"{op}: dim must be an int, got {type(dim).__name__}")
    if not -tensor.dim() <= dim < tensor.dim():
        raise IndexError(
            f"{op}: dim {dim} is out of range for {name} with {tensor.dim()} dimensions"
        )


def check_generator(op: str, generator, device: torch.device) -> None:
    if generator is None:
        return
    if not isinstance(generator, torch.Generator):
        raise TypeError(
            f"{op}: generator must be a torch.Generator or None, got {type(generator).__name__}"
        )
    if generator.device.type != device.type:
        raise ValueError(
            f"{op}: generator is on {generator.device} but the inputs are on {device}; "
            f"pass a generator created with torch.Generator(device='{device.type}')"
        )

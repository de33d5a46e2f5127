"""How a family module attaches Python to its C++ ops: fake kernels, autograd formulas, vmap
rules, and the eager entry that applies those formulas without torch.library's per-call hops.

A family module names each op literally, so that grep finds every op where it is registered::

    @register_fake("gradext::gaussian_rsample")
    def _gaussian_rsample_fake(mu, logvar, num_samples=None, *, generator=None): ...

    _gaussian_rsample = with_autograd(
        "gradext::gaussian_rsample", _setup_context, _backward, _vmap, autograd_in_cpp=True)

``with_autograd`` takes one pair of formulas ``setup_context(ctx, inputs, output)`` /
``backward(ctx, *grads)`` and returns the op's *eager entry*, a callable with the op's signature
that the public functions call. Where the formulas serve depends on where the op's autograd kernel
is registered:

- ``autograd_in_cpp=True`` (the public sampling and estimator ops): the op's autograd kernel is in
  C++, csrc/ops/<family>_autograd.cpp, and builds a plain graph node. It is what an eager call, a
  direct caller of ``torch.ops.gradext.<op>`` and torch.compile (AOTAutograd) get: no Python
  frame between the call and the kernel, or between the engine and the fused backward op. It
  does not serve torch.func (the fused backward ops' derivatives are torch.library
  registrations without a setup_context, which functorch refuses, and the vmap rules are
  Python), so under its transforms the entry applies the Python formulas instead; they are the
  same formula (the C++ file says which Python function it mirrors), held to bitwise-equal
  values and gradients by tests/contracts/test_contract_eager_entry.py.
- otherwise (the fused backward ops, whose derivatives give double backward): the formulas are
  registered with torch.library.register_autograd, what torch.compile traces and what the C++
  backward formulas reach when they record a graph (create_graph=True). In plain eager mode that
  registration costs Python hops on every call (the dispatcher calls torch.library's Python
  autograd kernel, which fills in the schema's defaults, builds an autograd.Function and
  redispatches), so the entry applies one of two autograd.Function classes below around a call
  of the op below the autograd keys instead; with no gradient to track it calls the op below
  autograd directly; under torch.compile it calls the dispatcher op (the registered path).

Why two Function classes: torch.func transforms accept only the new style (forward without
ctx, setup_context apart), but in plain eager mode that style binds its arguments with
inspect.signature on every apply (tens of microseconds). So ``_EagerOp`` is old-style and
``_TransformOp`` new-style; both carry the entry as their last argument and delegate to its
formulas, so ``ctx.needs_input_grad[i]`` is input i of the op in every path. The Function that
torch.library generates for a registration cannot serve torch.func at all (it has no
setup_context: pytorch/pytorch#170834).

``backward`` returns one gradient per leading input (``None`` where there is none); the rest of
the op's arguments (sample counts, seeds, rng states) are padded with ``None`` here. ``vmap(info,
in_dims, *args)`` is the op's batching rule under torch.func.vmap (and jacrev, which vmaps the
backward ops); without one, vmap raises a clear NotImplementedError.

Without the compiled extension the ops do not exist: ``register_fake`` leaves its function
alone, ``with_autograd`` returns None, and the public functions run the fallback.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from gradext._extension import _C

LOADED = _C is not None


def op_overload(qualname: str) -> torch._ops.OpOverload:
    """torch.ops.gradext.<name>.default for "gradext::<name>"."""
    namespace, name = qualname.split("::")
    return getattr(getattr(torch.ops, namespace), name).default


def register_fake(qualname: str) -> Callable:
    """torch.library.register_fake(qualname) when the extension is loaded."""
    if not LOADED:
        return lambda fake: fake
    return torch.library.register_fake(qualname)


class EagerEntry:
    """One op with its formulas; calling it runs the op with autograd (see the module doc)."""

    def __init__(self, qualname, setup_context, backward, vmap, autograd_in_cpp):
        self.op = op_overload(qualname)
        self.autograd_in_cpp = autograd_in_cpp
        self.name = qualname
        schema_args = self.op._schema.arguments
        keyword_only = [a for a in schema_args if a.kwarg_only]
        self.keyword_names = tuple(a.name for a in keyword_only)
        self.keyword_defaults = tuple(
            a.default_value if a.has_default_value() else None for a in keyword_only
        )
        self.keyword_set = frozenset(self.keyword_names)
        if autograd_in_cpp and any(d is not None for d in self.keyword_defaults):
            raise ValueError(f"{qualname}: the eager entry assumes keyword-only defaults of None")
        self.num_positional = len(schema_args) - len(keyword_only)
        # The Function classes' trailing arguments (keyword-only values, the entry) take None.
        self.trailing_nones = (None,) * (len(keyword_only) + 1)
        self.setup_context = setup_context
        self.formula = backward
        self.vmap = vmap

    def backward(self, ctx, grads) -> tuple:
        """The formula's gradients padded with None to one per positional argument."""
        result = self.formula(ctx, *grads)
        return (*result, *([None] * (self.num_positional - len(result))))

    def below_autograd(self, args):
        """The op on (positional..., keyword values...) below the autograd keys."""
        positional = args[: self.num_positional]
        keyword = dict(zip(self.keyword_names, args[self.num_positional :]))
        with torch._C._AutoDispatchBelowAutograd():
            return self.op(*positional, **keyword)

    def __call__(self, *args, **kwargs):
        if len(args) != self.num_positional or not kwargs.keys() <= self.keyword_set:
            raise TypeError(
                f"{self.name} takes the {self.num_positional} positional arguments and the "
                f"keyword-only {self.keyword_names} of its schema"
            )
        if torch.compiler.is_compiling():
            return self.op(*args, **kwargs)
        transforms = torch._C._are_functorch_transforms_active()
        if self.autograd_in_cpp and not transforms:
            # Keywords left at their default (None: checked in __init__) are dropped: the
            # dispatcher's keyword parsing costs a microsecond per call for nothing.
            if kwargs and all(value is None for value in kwargs.values()):
                return self.op(*args)
            return self.op(*args, **kwargs)
        if transforms or _needs_grad(args):
            keyword = (kwargs.get(n, d) for n, d in zip(self.keyword_names, self.keyword_defaults))
            function = _TransformOp if transforms else _EagerOp
            return function.apply(*args, *keyword, self)
        with torch._C._AutoDispatchBelowAutograd():
            return self.op(*args, **kwargs)


def _needs_grad(args) -> bool:
    if not torch.is_grad_enabled():
        return False
    return any(isinstance(a, torch.Tensor) and a.requires_grad for a in args)


class _EagerOp(torch.autograd.Function):
    """Plain eager mode: forward(ctx, *op_args, entry), old style (no inspect.signature)."""

    @staticmethod
    def forward(ctx, *args):
        entry = args[-1]
        ctx.entry = entry
        output = entry.below_autograd(args[:-1])
        entry.setup_context(ctx, args[: entry.num_positional], output)
        return output

    @staticmethod
    def backward(ctx, *grads):
        return (*ctx.entry.backward(ctx, grads), *ctx.entry.trailing_nones)


class _TransformOp(torch.autograd.Function):
    """Under torch.func transforms: the new style they require, with the op's batching rule."""

    @staticmethod
    def forward(*args):
        return args[-1].below_autograd(args[:-1])

    @staticmethod
    def setup_context(ctx, inputs, output):
        entry = inputs[-1]
        ctx.entry = entry
        entry.setup_context(ctx, inputs[: entry.num_positional], output)

    @staticmethod
    def backward(ctx, *grads):
        return (*ctx.entry.backward(ctx, grads), *ctx.entry.trailing_nones)

    @staticmethod
    def vmap(info, in_dims, *args):
        entry = args[-1]
        if entry.vmap is None:
            raise NotImplementedError(
                f"gradext: vmap over {entry.name} is not supported: call it on the batched "
                "tensors directly (inputs broadcast, and every element gets its own noise)."
            )
        positional = args[: entry.num_positional]
        keyword = dict(zip(entry.keyword_names, args[entry.num_positional : -1]))
        return entry.vmap(info, in_dims[: entry.num_positional], *positional, **keyword)


def with_autograd(
    qualname: str,
    setup_context: Callable,
    backward: Callable,
    vmap: Callable | None = None,
    *,
    autograd_in_cpp: bool = False,
) -> EagerEntry | None:
    """The op's eager entry (None without the extension); registers the formulas as the op's
    autograd unless that is in C++ (see the module doc)."""
    if not LOADED:
        return None
    entry = EagerEntry(qualname, setup_context, backward, vmap, autograd_in_cpp)
    if autograd_in_cpp:
        return entry
    torch.library.register_autograd(
        qualname, lambda ctx, *grads: entry.backward(ctx, grads), setup_context=setup_context
    )
    return entry


# --- helpers of the vmap rules ---


def check_vmap_randomness(info, name: str) -> None:
    """For the batching rule of a sampling op: vmap's randomness="different" is what calling
    the op on the batched tensor gives (every element its own noise); "error" is torch's
    default for random ops, and "same" (one noise for the whole batch) is not supported."""
    if info.randomness == "error":
        raise RuntimeError(
            "vmap: called random operation while in randomness error mode. Please either use "
            "the 'same' or 'different' randomness flags on vmap or perform the randomness "
            "operation out of vmap"
        )
    if info.randomness != "different":
        raise NotImplementedError(
            f"gradext: vmap over {name} supports randomness='different' only (every element "
            f"its own noise), got randomness={info.randomness!r}"
        )


def batch_first(x: torch.Tensor, batch_dim: int | None, batch_size: int) -> torch.Tensor:
    """For a vmap rule: x with its vmapped dimension first (a broadcast view when x is not
    batched)."""
    if batch_dim is None:
        return x.expand(batch_size, *x.shape)
    return x.movedim(batch_dim, 0)


def example_rank(tensors, in_dims) -> int:
    """The rank of one example's broadcast shape of `tensors`, given their vmap in_dims."""
    return max(t.dim() - (d is not None) for t, d in zip(tensors, in_dims))


def batched_param(x: torch.Tensor, batch_dim: int | None, batch_size: int, rank: int, expand: bool):
    """For a vmap rule over broadcasting parameters: x with its batch dimension first and
    singleton dimensions after it up to 1 + rank dimensions, so that it broadcasts per example.
    An unbatched x is expanded over the batch when `expand` (per-example gradients need the
    batch dimension) and left to broadcast as it is otherwise."""
    if batch_dim is None and not expand:
        return x
    x = batch_first(x, batch_dim, batch_size)
    return x.reshape(batch_size, *([1] * (rank - (x.dim() - 1))), *x.shape[1:])


# --- helpers of the fake kernels ---


def two_parameter_sample(a: torch.Tensor, b: torch.Tensor, num_samples) -> torch.Tensor:
    """The output of a sampler of two broadcasting parameters (gamma_rsample's concentration and
    rate, von_mises_rsample's loc and concentration): their broadcast shape, after
    `num_samples` when given, in their promoted dtype."""
    shape = torch.broadcast_shapes(a.shape, b.shape)
    if num_samples is not None:
        shape = (num_samples, *shape)
    return a.new_empty(shape, dtype=torch.promote_types(a.dtype, b.dtype))

"""Eager-mode calls of the ops that skip torch.library's Python autograd kernel.

Each op's autograd is registered on the dispatcher with torch.library.register_autograd (the
family modules beside this one): that is what torch.compile / AOTAutograd trace, and what a
direct caller of ``torch.ops.gradext.<op>`` gets. In eager mode that registration costs its
Python hops on every call: the dispatcher calls the Python autograd kernel, which fills in the
schema's defaults, builds an autograd.Function and redispatches below autograd: about 40 us per
forward + backward on the 2-core CI machine, a tenth of a whole fwd+bwd at a [256, 64] VAE
latent (benchmarks/NOTES.md, session 4). PyTorch's own guidance for low-overhead custom ops is
the same: keep the autograd.Function outside the operator (pytorch/pytorch#139500, #176592).

``eager_call`` gives the public API a callable with the op's signature that, in plain eager
mode, applies an autograd.Function built from the *same* setup_context and backward formula that
the registration uses, around a call of the op below the autograd keys; without a gradient to
track it calls the op below autograd directly. Under torch.compile it calls the dispatcher op,
so compiled graphs keep the registered path. Under a torch.func transform (torch.func.grad,
nested or not) it applies a new-style Function (forward without ctx, setup_context apart) of
the same formulas: functorch accepts only that style, and the Function torch.library generates
for a registration is not (pytorch/pytorch#170834, open in the torch versions supported here).
Batching rules (vmap, and jacrev, which vmaps the backward) exist for the estimators, every
fused backward, and every sampler (randomness="different"); the seeded twins of the samplers
(internal) refuse vmap with a clear error.

The fused backward ops are called through the same kind of entry (``register_autograd``
below), so a first-order backward calls their kernels below autograd, and a backward with
create_graph=True records them with their own derivatives (double backward).
"""

from __future__ import annotations

from typing import Callable

import torch


def _needs_grad(args) -> bool:
    if not torch.is_grad_enabled():
        return False
    return any(isinstance(a, torch.Tensor) and a.requires_grad for a in args)


def _vmap_unsupported(op: torch._ops.OpOverload) -> Callable:
    def rule(info, in_dims, *args):
        raise NotImplementedError(
            f"gradext: vmap over {op._opname} is not supported: call it on the batched tensors "
            "directly (inputs broadcast, and every element gets its own noise)."
        )

    return rule


def eager_call(
    op: torch._ops.OpOverload,
    setup_context: Callable,
    backward: Callable,
    vmap: Callable | None = None,
) -> Callable:
    """A callable with ``op``'s signature (keyword-only arguments by keyword) that, in eager
    mode, runs ``op``'s kernel with autograd from ``setup_context(ctx, inputs, output)`` and
    ``backward(ctx, *grads)`` (the register_autograd formulas: one gradient per positional
    input). ``vmap(info, in_dims, *args)`` is the op's batching rule under torch.func.vmap
    (autograd.Function's vmap staticmethod; jacrev uses the backward ops' rules); without
    one, vmap raises NotImplementedError."""
    keyword_only = [a for a in op._schema.arguments if a.kwarg_only]
    keyword_names = tuple(a.name for a in keyword_only)
    keyword_set = frozenset(keyword_names)
    keyword_defaults = tuple(a.default_value if a.has_default_value() else None for a in keyword_only)
    num_positional = len(op._schema.arguments) - len(keyword_names)

    def call_below_autograd(positional, keyword):
        with torch._C._AutoDispatchBelowAutograd():
            return op(*positional, **keyword)

    # Old-style forward(ctx, ...): a separate setup_context staticmethod would make every
    # apply() bind the arguments with inspect.signature (tens of microseconds).
    def forward(ctx, *args):
        positional = args[:num_positional]
        output = call_below_autograd(positional, dict(zip(keyword_names, args[num_positional:])))
        setup_context(ctx, positional, output)
        return output

    def backward_all_inputs(ctx, *grads):
        return (*backward(ctx, *grads), *([None] * len(keyword_names)))

    # Built with type() so that the graph node is named after the op (Eager_<op>Backward).
    eager_function = type(
        f"Eager_{op._opname}",
        (torch.autograd.Function,),
        {"forward": staticmethod(forward), "backward": staticmethod(backward_all_inputs)},
    )

    # torch.func transforms need the new style (forward without ctx, setup_context apart); the
    # dispatcher op's own wrapper cannot serve them (pytorch/pytorch#170834).
    def forward_without_ctx(*args):
        positional = args[:num_positional]
        return call_below_autograd(positional, dict(zip(keyword_names, args[num_positional:])))

    def setup_context_of_all_inputs(ctx, inputs, output):
        setup_context(ctx, inputs[:num_positional], output)

    transform_function = type(
        f"Func_{op._opname}",
        (torch.autograd.Function,),
        {
            "forward": staticmethod(forward_without_ctx),
            "setup_context": staticmethod(setup_context_of_all_inputs),
            "backward": staticmethod(backward_all_inputs),
            "vmap": staticmethod(vmap if vmap is not None else _vmap_unsupported(op)),
        },
    )

    def call(*args, **kwargs):
        if len(args) != num_positional or not kwargs.keys() <= keyword_set:
            raise TypeError(
                f"{op}: eager_call takes the {num_positional} positional arguments and the "
                f"keyword-only {keyword_names} of the schema"
            )
        if torch.compiler.is_compiling():
            return op(*args, **kwargs)
        if torch._C._are_functorch_transforms_active():
            keyword = (kwargs.get(n, d) for n, d in zip(keyword_names, keyword_defaults))
            return transform_function.apply(*args, *keyword)
        if _needs_grad(args):
            keyword = (kwargs.get(n, d) for n, d in zip(keyword_names, keyword_defaults))
            return eager_function.apply(*args, *keyword)
        return call_below_autograd(args, kwargs)

    return call


def register_autograd(
    op: torch._ops.OpOverload,
    setup_context: Callable,
    backward: Callable,
    vmap: Callable | None = None,
) -> Callable:
    """Registers ``backward`` / ``setup_context`` as ``op``'s autograd on the dispatcher (what
    torch.compile traces) and returns its eager entry (``eager_call``) with the same formulas
    and batching rule."""
    torch.library.register_autograd(op, backward, setup_context=setup_context)
    return eager_call(op, setup_context, backward, vmap)


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


def register_sampling_op(
    name: str, setup_context: Callable, make_backward: Callable, vmap: Callable | None = None
) -> Callable:
    """Registers the sampling op ``gradext::<name>`` and its ``_<name>_seeded`` twin (the same
    arguments plus seed and offset) with one formula, and returns the sampling op's eager entry.
    ``make_backward(n)`` gives the formula for an op with n more non-tensor arguments than
    the sampling op (their gradients are None); ``vmap`` is the sampling op's batching rule."""
    register_autograd(
        getattr(torch.ops.gradext, f"_{name}_seeded").default, setup_context, make_backward(2)
    )
    sampling_op = getattr(torch.ops.gradext, name).default
    return register_autograd(sampling_op, setup_context, make_backward(0), vmap)

"""SHA-256 digests of every op's outputs and gradients (first and second order) for a fixed set
of seeds, shapes and dtypes, on the kernels and on the pure-PyTorch fallback.

A change that must not move a single bit (a refactor, a new build flag) is checked by running
this before and after and comparing the two files:

    python scripts/op_digests.py > before.json
    ... change ...
    python scripts/op_digests.py > after.json && cmp before.json after.json

Only the public API is used, so the script outlives internal reorganisations.
"""

from __future__ import annotations

import hashlib
import json
import sys

import torch

import gradext
from gradext import _extension

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]


def digest(tensor) -> str:
    if tensor is None:
        return "none"
    t = tensor.detach().contiguous().cpu()
    payload = t.view(torch.uint8) if t.numel() and t.dtype != torch.bool else t.to(torch.uint8)
    h = hashlib.sha256()
    h.update(f"{t.dtype}{tuple(t.shape)}".encode())
    h.update(payload.numpy().tobytes())
    return h.hexdigest()[:24]


def inputs(shape, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64).to(dtype).requires_grad_()


def through(function, leaves, seed):
    """The output, first gradients and a second-order gradient of sum(out * w) for leaves."""
    torch.manual_seed(seed)
    out = function(*leaves)
    outputs = out if isinstance(out, tuple) else (out,)
    differentiable = [o for o in outputs if o.is_floating_point()]
    w = [
        torch.linspace(-1, 1, o.numel(), dtype=torch.float64).view(o.shape).to(o.dtype)
        for o in differentiable
    ]
    total = sum((o * wi).sum() for o, wi in zip(differentiable, w))
    grads = torch.autograd.grad(total, leaves, create_graph=True, allow_unused=True)
    record = [digest(o) for o in outputs] + [digest(g) for g in grads]
    second = sum((g.float() * g.float()).sum() for g in grads if g is not None and g.requires_grad)
    if isinstance(second, torch.Tensor):
        record += [digest(g) for g in torch.autograd.grad(second, leaves, allow_unused=True)]
    return record


def cases():
    for dtype in DTYPES:
        d = str(dtype).replace("torch.", "")
        for k in (None, 1, 4):
            for lv_shape in ((6, 5), (5,)):
                yield (
                    f"gaussian_rsample/{d}/K={k}/logvar{lv_shape}",
                    lambda mu, lv, k=k: gradext.gaussian_rsample(mu, lv, k),
                    [((6, 5), dtype, 1), (lv_shape, dtype, 2)],
                )
        yield (
            f"gaussian_rsample/{d}/generator",
            lambda mu, lv: gradext.gaussian_rsample(
                mu, lv, 3, generator=torch.Generator().manual_seed(11)
            ),
            [((33,), dtype, 3), ((33,), dtype, 4)],
        )
        for hard in (False, True):
            for shape, dim in (((7, 10), -1), ((3, 40, 2), 1), ((2, 3000), -1)):
                yield (
                    f"gumbel_softmax/{d}/hard={hard}/{shape}/dim={dim}",
                    lambda x, hard=hard, dim=dim: gradext.gumbel_softmax(
                        x, tau=0.7, hard=hard, dim=dim
                    ),
                    [(shape, dtype, 5)],
                )
            yield (
                f"gumbel_sigmoid/{d}/hard={hard}",
                lambda x, hard=hard: gradext.gumbel_sigmoid(x, tau=0.6, hard=hard),
                [((9, 7), dtype, 6)],
            )
        for shape, dim in (((8, 13), 0), ((3, 6, 5), 1), ((4, 9), -1)):
            yield (
                f"score_function_loo/{d}/{shape}/dim={dim}",
                lambda f, lp, dim=dim: gradext.score_function_loo(f * f, lp, dim),
                [(shape, dtype, 7), (shape, dtype, 8)],
            )
            yield (
                f"vimco/{d}/{shape}/dim={dim}",
                lambda w, lp, dim=dim: gradext.vimco(3 * w, lp, dim),
                [(shape, dtype, 9), (shape, dtype, 10)],
            )
        for shape, k in (((5, 10), 3), ((2, 1500), 2)):
            yield (
                f"categorical_sample/{d}/{shape}/K={k}",
                lambda x, k=k: gradext.categorical_sample(x, k),
                [(shape, dtype, 12)],
            )


def main() -> int:
    result = {"extension": gradext.has_extension(), "cpu_isa": gradext.cpu_isa()}
    implementations = ["kernels", "fallback"] if gradext.has_extension() else ["fallback"]
    for impl in implementations:
        for name, function, specs in cases():
            leaves = [inputs(*spec) for spec in specs]
            if impl == "fallback":
                with _extension.force_fallback():
                    result[f"{impl}/{name}"] = through(function, leaves, 1234)
            else:
                result[f"{impl}/{name}"] = through(function, leaves, 1234)
    if gradext.has_extension():
        like = torch.empty(1001)
        result["kernels/_philox_uniform"] = digest(torch.ops.gradext._philox_uniform(like, 5, 3))
    json.dump(result, sys.stdout, indent=1, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())

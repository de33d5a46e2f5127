"""The Gamma family in plain PyTorch: gamma_rsample (the fallback) and the implicit
reparameterization gradient of a standard Gamma sample, the same maths as
csrc/common/gamma_math.h (the differentiated power series of P below z = max(alpha + 1, 1),
Legendre's continued fraction for Q in dual numbers above), vectorized with masks, in float64
whatever the input dtype; the tests' second oracle.

    dz/dalpha = -(dP(alpha, z)/dalpha) / p(z; alpha),   z ~ Gamma(alpha, 1)

Each expansion iterates until every element's next term is below float64 resolution; the
convergence test runs every ``CHECK_EVERY`` iterations (a device synchronization on a GPU).
"""

from __future__ import annotations

import torch

MAX_TERMS = 20_000  # as gamma_math.h: the series near z = alpha = 1e4 needs about 1,000
TOLERANCE = 1e-16
CHECK_EVERY = 16


class _Active:
    """The elements of a 1-D expansion still iterating: every CHECK_EVERY iterations the
    converged ones are written out and dropped, so the work is the sum of the elements' term
    counts, not the slowest element's count times the size."""

    def __init__(self, like: torch.Tensor, **state: torch.Tensor):
        self.out = torch.empty_like(like)
        self.index = torch.arange(like.numel(), device=like.device)
        self.state = state

    def retire(self, done: torch.Tensor, result: torch.Tensor) -> bool:
        """Writes the results of the `done` elements; False once none is left."""
        if not bool(done.any()):
            return True
        self.out[self.index[done]] = result[done]
        keep = ~done
        self.index = self.index[keep]
        self.state = {name: t[keep] for name, t in self.state.items()}
        return self.index.numel() > 0

    def finish(self, result: torch.Tensor) -> torch.Tensor:
        self.out[self.index] = result
        return self.out


def _series(alpha: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    # dz/dalpha = sum_n r_n (psi(alpha + n + 1) - ln z),
    # r_0 = z / alpha, r_n = r_(n-1) z / (alpha + n)
    r = z / alpha
    psi_minus_log_z = torch.digamma(alpha + 1) - torch.log(z)
    active = _Active(z, alpha=alpha, z=z, r=r, psi=psi_minus_log_z, total=r * psi_minus_log_z)
    for n in range(1, MAX_TERMS):
        v = active.state
        an = v["alpha"] + n
        v["r"] = v["r"] * v["z"] / an
        v["psi"] = v["psi"] + 1 / an
        term = v["r"] * v["psi"]
        v["total"] = v["total"] + term
        if n % CHECK_EVERY == 0:
            done = (term.abs() <= TOLERANCE * v["total"].abs()) & (v["z"] < an)
            if not active.retire(done, v["total"]):
                return active.out
    return active.finish(active.state["total"])


def _continued_fraction(alpha: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    # Modified Lentz on F = 1 / (b_0 - a_1 / (b_1 - ...)), b_k = z + 2k + 1 - alpha,
    # a_k = k (k - alpha), carrying each quantity's derivative in alpha (dual numbers).
    tiny = 1e-300

    def divide(a, da, b, db):
        q = a / b
        return q, (da - q * db) / b

    def floor_tiny(v):
        return torch.where(v.abs() < tiny, torch.full_like(v, tiny), v)

    def result(v):
        return v["z"] * ((torch.log(v["z"]) - torch.digamma(v["alpha"])) * v["f"] + v["df"])

    one, zero = torch.ones_like(z), torch.zeros_like(z)
    b, db = z + 1 - alpha, -one
    d, dd = divide(one, zero, b, db)
    active = _Active(z, alpha=alpha, z=z, b=b, c=torch.full_like(z, 1 / tiny), dc=zero, d=d, dd=dd)
    active.state.update(f=d, df=dd)
    for k in range(1, MAX_TERMS):
        v = active.state
        minus_a, dminus_a = -k * (k - v["alpha"]), torch.full_like(v["z"], float(k))
        db = -torch.ones_like(v["z"])
        v["b"] = v["b"] + 2
        d, dd = v["b"] + minus_a * v["d"], db + dminus_a * v["d"] + minus_a * v["dd"]
        d = floor_tiny(d)
        ratio, dratio = divide(minus_a, dminus_a, v["c"], v["dc"])
        c, dc = v["b"] + ratio, db + dratio
        v["c"], v["dc"] = floor_tiny(c), dc
        v["d"], v["dd"] = divide(torch.ones_like(d), torch.zeros_like(d), d, dd)
        delta, ddelta = v["c"] * v["d"], v["dc"] * v["d"] + v["c"] * v["dd"]
        v["f"], v["df"] = v["f"] * delta, v["df"] * delta + v["f"] * ddelta
        if k % CHECK_EVERY == 0:
            done = ((delta - 1).abs() <= TOLERANCE) & (
                ddelta.abs() <= TOLERANCE * (v["df"] / v["f"]).abs()
            )
            if not active.retire(done, result(v)):
                return active.out
    return active.finish(result(active.state))


def standard_gamma_dz_dalpha(alpha: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """dz/dalpha of standard Gamma(alpha, 1) samples z (alpha > 0, z > 0; broadcast), in
    float64."""
    alpha, z = torch.broadcast_tensors(alpha.to(torch.float64), z.to(torch.float64))
    use_series = (z < alpha + 1) | (z < 1)
    out = torch.empty_like(z)
    if bool(use_series.any()):
        out[use_series] = _series(alpha[use_series], z[use_series])
    upper = ~use_series
    if bool(upper.any()):
        out[upper] = _continued_fraction(alpha[upper], z[upper])
    return out


def standard_gamma_dlog_dalpha(alpha: torch.Tensor, log_z: torch.Tensor) -> torch.Tensor:
    """d log z / d alpha of standard Gamma(alpha, 1) samples given as log z, also where z
    underflows (below 1e-300 it is (psi(alpha + 1) - log z) / alpha to float64 precision: the
    series' later terms are smaller by z / alpha), in float64 (as gamma_math.h)."""
    alpha, log_z = torch.broadcast_tensors(alpha.to(torch.float64), log_z.to(torch.float64))
    tiny = log_z < -690.0
    out = (torch.digamma(alpha + 1) - log_z) / alpha
    if bool((~tiny).any()):
        z = torch.exp(log_z[~tiny])
        out[~tiny] = standard_gamma_dz_dalpha(alpha[~tiny], z) / z
    return out


def mpmath_dz_dalpha(alpha: float, z: float) -> float:
    """dz/dalpha at one point in 40-digit arithmetic (mpmath, which comes with torch's sympy):
    the oracle of the tests and the accuracy benchmark. Through whichever of P and Q = 1 - P is
    not close to 1 (dP/dalpha = -dQ/dalpha; differentiating a function that rounds to 1 loses
    everything)."""
    import mpmath

    with mpmath.workdps(40):
        a, x = mpmath.mpf(alpha), mpmath.mpf(z)
        if x > a:
            upper = lambda s: mpmath.gammainc(s, x, mpmath.inf, regularized=True)  # noqa: E731
            d_upper = mpmath.diff(upper, a)
        else:
            lower = lambda s: mpmath.gammainc(s, 0, x, regularized=True)  # noqa: E731
            d_upper = -mpmath.diff(lower, a)
        density = mpmath.exp((a - 1) * mpmath.log(x) - x - mpmath.loggamma(a))
        return float(d_upper / density)


# --- gamma_rsample in plain PyTorch -----------------------------------------------------------


def check_gamma_parameter(op: str, name: str, value: torch.Tensor) -> None:
    """A ValueError naming the argument where a value is not positive and finite. On a GPU, and
    inside a torch.compile graph, the check is torch._assert_async (no host synchronization, no
    data-dependent branch; on a GPU a failure surfaces as a device-side assertion at the next
    synchronization, as the CUDA kernels' does; compiled on the CPU, as a RuntimeError with the
    same message)."""
    valid = (value > 0) & torch.isfinite(value)
    if value.device.type == "cuda" or torch.compiler.is_compiling():
        torch._assert_async(valid.all(), f"{op}: {name} must be positive and finite")
        return
    if not bool(valid.all()):
        bad = value[~valid].reshape(-1)[0].item()
        raise ValueError(f"{op}: {name} must be positive and finite, got {bad}")


def _expansion_function(fn, op: str):
    """fn(alpha, value) -> a gradient factor, as an autograd.Function that torch.func can batch:
    the expansions iterate to convergence (data-dependent loops), which vmap cannot trace, so the
    vmap rule runs fn on the unbatched tensors. Not differentiated again: its backward raises."""

    def backward(ctx, grad):
        raise NotImplementedError(
            f"{op}: second derivatives with respect to the concentration are not implemented "
            "(they need the implicit gradient's own derivative in the concentration)"
        )

    def vmap(info, in_dims, alpha, value):
        alpha = alpha.movedim(in_dims[0], 0) if in_dims[0] is not None else alpha
        value = value.movedim(in_dims[1], 0) if in_dims[1] is not None else value
        rank = max(alpha.dim() - (in_dims[0] is not None), value.dim() - (in_dims[1] is not None))

        def batched(x, batch_dim):
            if batch_dim is None:
                return x
            return x.reshape(x.shape[0], *([1] * (rank - (x.dim() - 1))), *x.shape[1:])

        return fn(batched(alpha, in_dims[0]), batched(value, in_dims[1])), 0

    return type(
        f"_{fn.__name__}",
        (torch.autograd.Function,),
        {
            "forward": staticmethod(fn),
            "setup_context": staticmethod(lambda ctx, inputs, output: None),
            "backward": staticmethod(backward),
            "vmap": staticmethod(vmap),
        },
    )


_DzDalpha = _expansion_function(standard_gamma_dz_dalpha, "gamma_rsample")


class _StandardGamma(torch.autograd.Function):
    """torch._standard_gamma's sample with the implicit gradient of this module (torch's own
    backward, _standard_gamma_grad, uses fitted approximations: docs/design.md compares them)."""

    @staticmethod
    def forward(alpha, generator):
        extra = {} if generator is None else {"generator": generator}
        return torch._standard_gamma(alpha, **extra)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0], output)

    @staticmethod
    def backward(ctx, grad):
        alpha, z = ctx.saved_tensors
        return grad * _DzDalpha.apply(alpha, z).to(grad.dtype), None

    @staticmethod
    def vmap(info, in_dims, alpha, generator):
        # randomness="different": every element its own draw, as on the batched tensor.
        return _StandardGamma.apply(alpha.movedim(in_dims[0], 0), generator), 0


def gamma_rsample(
    concentration: torch.Tensor,
    rate: torch.Tensor | float = 1.0,
    num_samples: int | None = None,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Same contract as gradext.gamma_rsample: samples from torch._standard_gamma (in float32 for
    the half types, which it does not support), the implicit gradient of this module for the
    concentration, -z / rate for the rate, values clamped into the dtype's positive normal range
    (never 0 or inf)."""
    op = "gamma_rsample"
    if not isinstance(rate, torch.Tensor):
        rate = torch.full((), float(rate), dtype=concentration.dtype, device=concentration.device)
    check_gamma_parameter(op, "concentration", concentration.detach())
    check_gamma_parameter(op, "rate", rate.detach())
    shape = torch.broadcast_shapes(concentration.shape, rate.shape)
    if num_samples is not None:
        shape = (num_samples, *shape)
    dtype = torch.promote_types(concentration.dtype, rate.dtype)
    math_dtype = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    alpha = concentration.to(math_dtype).expand(shape)
    standard = _StandardGamma.apply(alpha, generator)
    info = torch.finfo(dtype)
    return torch.clamp(standard / rate.to(math_dtype), info.tiny, info.max).to(dtype)

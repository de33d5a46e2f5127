"""The von Mises family in plain PyTorch: von_mises_rsample (the fallback) and the implicit
reparameterization gradient of a von Mises sample, the same maths as
csrc/common/von_mises_math.h (1 - A, A = I1/I0 the mean resultant length, by Perron's continued
fraction or Hankel's series; each element's gradient by whichever of the bulk and tail integrals
has an integrand of one sign, by Gauss-Legendre or Gauss-Laguerre),
vectorized with masks, in float64 whatever the input dtype; the tests' second oracle.

    d delta / d kappa = -(dF(delta; kappa)/dkappa) / p(delta; kappa),  delta = x - loc
"""

from __future__ import annotations

import math

import numpy as np
import torch

# The quadrature rules of von_mises_math.h (the C++ tables were printed from these).
_LEGENDRE_NODES, _LEGENDRE_WEIGHTS = np.polynomial.legendre.leggauss(24)
_LAGUERRE_NODES, _LAGUERRE_WEIGHTS = np.polynomial.laguerre.laggauss(32)
_PI_LOW = 1.2246467991473532e-16  # pi - float64(pi)


def bessel_ratio(kappa: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(A, 1 - A), A = I1(kappa) / I0(kappa), each to float64 precision (kappa > 0, float64)."""
    a = torch.empty_like(kappa)
    one_minus_a = torch.empty_like(kappa)
    small = kappa < 50.0
    if bool(small.any()):
        k = kappa[small]
        n_start = 8 + math.ceil(6.0 * math.sqrt(50.0))  # as von_mises_math.h at kappa = 50
        m = n_start + 1
        q = k / (m + torch.sqrt(m * m + k * k))
        c = 1 - q
        for n in range(n_start, 0, -1):
            step = 2.0 * n / k
            q = 1 / (step + q)
            c = (step - c) / (step + 1 - c)
        a[small], one_minus_a[small] = q, c
    large = ~small
    if bool(large.any()):
        k = kappa[large]
        t0, t1 = torch.ones_like(k), torch.ones_like(k)
        s0, s1, difference = t0.clone(), t1.clone(), torch.zeros_like(k)
        for j in range(1, 60):  # past convergence the terms only shrink further
            odd = 2.0 * j - 1.0
            scale = 1 / (8.0 * j * k)
            t0 = t0 * (odd * odd * scale)
            t1 = t1 * ((odd * odd - 4.0) * scale)
            s0, s1, difference = s0 + t0, s1 + t1, difference + (t0 - t1)
        a[large], one_minus_a[large] = s1 / s0, difference / s0
    return a, one_minus_a


def _legendre(f, start, length):
    """Int_start^(start + length) f(t) dt by 24-node Gauss-Legendre, per element (rows)."""
    nodes = torch.as_tensor(_LEGENDRE_NODES, dtype=torch.float64, device=start.device)
    weights = torch.as_tensor(_LEGENDRE_WEIGHTS, dtype=torch.float64, device=start.device)
    half = (0.5 * length)[:, None]
    return (f(start[:, None] + half + half * nodes) * weights).sum(-1) * half[:, 0]


def _bulk(kappa, one_minus_a, sd):
    # in s = sin(t / 2) on [0, s_d], as von_mises_math.h's bulk_integral
    k, c, sd2 = kappa[:, None], one_minus_a[:, None], (sd * sd)[:, None]

    def f(s):
        return torch.exp(2 * k * (sd2 - s * s)) * (c - 2 * s * s) * 2 / torch.sqrt(1 - s * s)

    return _legendre(f, torch.zeros_like(sd), sd)


def _gentle_tail(kappa, one_minus_a, sd2, d):
    k, c, s2 = kappa[:, None], one_minus_a[:, None], sd2[:, None]

    def f(t):
        st2 = torch.sin(0.5 * t) ** 2
        return torch.exp(2 * k * (s2 - st2)) * (c - 2 * st2)

    return _legendre(f, d, (math.pi - d) + _PI_LOW)


def _laguerre_tail(kappa, one_minus_a, sd):
    nodes = torch.as_tensor(_LAGUERRE_NODES, dtype=torch.float64, device=kappa.device)
    weights = torch.as_tensor(_LAGUERRE_WEIGHTS, dtype=torch.float64, device=kappa.device)
    lam = (4 * kappa * sd)[:, None]
    beta = (1 / (8 * kappa * sd * sd))[:, None]
    s = sd[:, None] + nodes / lam
    inside = s < 1
    s_in = torch.where(inside, s, torch.zeros_like(s))
    f = (
        torch.exp(-beta * nodes * nodes)
        * (one_minus_a[:, None] - 2 * s_in * s_in)
        * 2
        / torch.sqrt(1 - s_in * s_in)
    )
    return (torch.where(inside, f, torch.zeros_like(f)) * weights).sum(-1) / lam[:, 0]


def von_mises_ddelta_dkappa(kappa: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """d delta / d kappa of von Mises(0, kappa) samples delta in [-pi, pi] (broadcast), float64."""
    kappa, delta = torch.broadcast_tensors(kappa.to(torch.float64), delta.to(torch.float64))
    shape = delta.shape
    kappa, delta = kappa.reshape(-1), delta.reshape(-1)
    d = delta.abs()
    _, one_minus_a = bessel_ratio(kappa)
    sd2 = torch.sin(0.5 * d) ** 2
    past_sign_change = 2 * sd2 > one_minus_a
    gentle_tail = past_sign_change & (2 * kappa * (1 - sd2) <= 40.0)
    steep_tail = past_sign_change & ~gentle_tail & (4 * kappa * sd2 >= 16.0)
    bulk = ~gentle_tail & ~steep_tail
    value = torch.empty_like(d)
    if bool(bulk.any()):
        i = bulk
        value[i] = -_bulk(kappa[i], one_minus_a[i], torch.sqrt(sd2[i]))
    if bool(gentle_tail.any()):
        i = gentle_tail
        value[i] = _gentle_tail(kappa[i], one_minus_a[i], sd2[i], d[i])
    if bool(steep_tail.any()):
        i = steep_tail
        value[i] = _laguerre_tail(kappa[i], one_minus_a[i], torch.sqrt(sd2[i]))
    return torch.where(delta < 0, -value, value).reshape(shape)


def wrap_angle(x: torch.Tensor) -> torch.Tensor:
    """x wrapped into [-pi, pi) (differentiable: the shift is piecewise constant)."""
    return x - (2 * math.pi) * torch.floor((x + math.pi) / (2 * math.pi)).detach()


def mpmath_ddelta_dkappa(kappa: float, delta: float) -> float:
    """d delta / d kappa at one point in 40-digit arithmetic (mpmath, which comes with torch's
    sympy): the oracle of the tests and the accuracy benchmark. The tail integral
    -Int_delta^pi exp(kappa (cos t - cos delta)) (A - cos t) dt, split where the integrand
    falls."""
    import mpmath

    with mpmath.workdps(40):
        k, d = mpmath.mpf(kappa), abs(mpmath.mpf(delta))
        a = mpmath.besseli(1, k) / mpmath.besseli(0, k)

        def integrand(t):
            return mpmath.exp(k * (mpmath.cos(t) - mpmath.cos(d))) * (a - mpmath.cos(t))

        width = 1 / (k * mpmath.sin(d) + mpmath.sqrt(k)) if d > 0 else mpmath.mpf(1)
        points = [d] + [d + width * j for j in (1, 3, 10, 30, 100) if d + width * j < mpmath.pi]
        value = -mpmath.quad(integrand, points + [mpmath.pi])
        return float(value if delta >= 0 else -value)


# --- von_mises_rsample in plain PyTorch -------------------------------------------------------


def check_von_mises_parameters(op: str, loc: torch.Tensor, concentration: torch.Tensor) -> None:
    """A ValueError naming the argument where loc is not finite or the concentration is not
    positive and finite. On a GPU and under torch.compile, torch._assert_async (no host
    synchronization), as gradext.reference.gamma.check_gamma_parameter."""
    checks = (
        ("loc", torch.isfinite(loc), "loc must be finite"),
        (
            "concentration",
            (concentration > 0) & torch.isfinite(concentration),
            "concentration must be positive and finite",
        ),
    )
    for name, valid, message in checks:
        value = loc if name == "loc" else concentration
        if value.device.type == "cuda" or torch.compiler.is_compiling():
            torch._assert_async(valid.all(), f"{op}: {message}")
            continue
        if not bool(valid.all()):
            bad = value[~valid].reshape(-1)[0].item()
            raise ValueError(f"{op}: {message}, got {bad}")


def _best_fisher_offsets(kappa: torch.Tensor, generator) -> torch.Tensor:
    """von Mises(0, kappa) samples by Best and Fisher's rejection sampler, vectorized, in
    kappa's dtype: the stable formulas of csrc/common/von_mises_sampler.h with torch.rand's
    uniforms (the same law, not the kernels' values)."""
    extra = {} if generator is None else {"generator": generator}
    k = kappa.clamp(1e-30, 1e30)
    big = k >= 1
    s = torch.where(
        big,
        2 * k * torch.sqrt(1 + 0.25 / (k * k)),
        torch.sqrt(1 + 4 * torch.where(big, torch.zeros_like(k), k) ** 2),
    )
    tau = 1 + s
    root = torch.sqrt(2 * tau)
    rho = 2 * k / (tau + root)
    one_minus_rho = (1 + 1 / (s + 2 * k) + root) / (tau + root)
    r_minus_one = one_minus_rho**2 / (2 * rho)
    r_plus_one = (1 + rho) ** 2 / (2 * rho)
    out = torch.zeros_like(k)
    pending = torch.ones_like(k, dtype=torch.bool)
    for _ in range(64):  # each proposal accepted with probability >= 0.65
        u1 = torch.rand(k.shape, dtype=k.dtype, device=k.device, **extra)
        u2 = torch.rand(k.shape, dtype=k.dtype, device=k.device, **extra)
        sign = torch.rand(k.shape, dtype=k.dtype, device=k.device, **extra) < 0.5
        sh2, ch2 = torch.sin(0.5 * math.pi * u1) ** 2, torch.cos(0.5 * math.pi * u1) ** 2
        r_plus_z = r_minus_one + 2 * ch2
        h = r_minus_one * sh2 / r_plus_z
        g = r_plus_one * ch2 / r_plus_z
        c = k * (r_minus_one + 2 * h)
        accept = (c * (2 - c) > u2) | (torch.log(c) - torch.log(u2) + 1 - c >= 0)
        angle = 2 * torch.atan2(torch.sqrt(h), torch.sqrt(g))
        take = pending & accept
        out = torch.where(take, torch.where(sign, -angle, angle), out)
        pending = pending & ~accept
        if not bool(pending.any()):
            break
    return out


class _DdeltaDkappa(torch.autograd.Function):
    """h = von_mises_ddelta_dkappa(kappa, delta) as a function autograd and torch.func can
    differentiate once more in delta, by the closed form dh/ddelta = -(cos delta - A) +
    kappa sin delta h (the kernels' double backward, gradext/von_mises.py); in kappa it
    raises, as on the kernels."""

    @staticmethod
    def forward(kappa, delta):
        return von_mises_ddelta_dkappa(kappa, delta)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0], inputs[1], output)

    @staticmethod
    def backward(ctx, grad):
        kappa, delta, h = ctx.saved_tensors
        if ctx.needs_input_grad[0]:
            raise NotImplementedError(
                "von_mises_rsample: second derivatives with respect to the concentration are "
                "not implemented (they need the implicit gradient's own derivative in the "
                "concentration)"
            )
        k = kappa.to(torch.float64)
        a, _ = bessel_ratio(k.reshape(-1))
        a = a.reshape(k.shape)
        d = delta.to(torch.float64)
        dh_ddelta = -(torch.cos(d) - a) + k * torch.sin(d) * h
        grad_delta = (grad * dh_ddelta).sum_to_size(delta.shape).to(delta.dtype)
        return None, grad_delta

    @staticmethod
    def vmap(info, in_dims, kappa, delta):
        # The quadrature selects per element with masks, which vmap cannot trace: run it on the
        # batched tensors (elementwise, so batching is broadcasting).
        kappa = kappa.movedim(in_dims[0], 0) if in_dims[0] is not None else kappa
        delta = delta.movedim(in_dims[1], 0) if in_dims[1] is not None else delta
        rank = max(kappa.dim() - (in_dims[0] is not None), delta.dim() - (in_dims[1] is not None))

        def batched(x, batch_dim):
            if batch_dim is None:
                return x
            return x.reshape(x.shape[0], *([1] * (rank - (x.dim() - 1))), *x.shape[1:])

        return _DdeltaDkappa.apply(batched(kappa, in_dims[0]), batched(delta, in_dims[1])), 0


class _VonMisesOffset(torch.autograd.Function):
    """The sampled offset delta with the implicit gradient of this module in kappa."""

    @staticmethod
    def forward(kappa, generator):
        return _best_fisher_offsets(kappa, generator)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0], output)

    @staticmethod
    def backward(ctx, grad):
        kappa, delta = ctx.saved_tensors
        return grad * _DdeltaDkappa.apply(kappa, delta).to(grad.dtype), None


def von_mises_rsample(
    loc: torch.Tensor,
    concentration: torch.Tensor | float,
    num_samples: int | None = None,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Same contract as gradext.von_mises_rsample: Best-Fisher samples from torch.rand (in
    float32 for the half types), the implicit gradient of this module for the concentration,
    1 for loc, values wrapped into [-pi, pi)."""
    op = "von_mises_rsample"
    if not isinstance(concentration, torch.Tensor):
        concentration = torch.full((), float(concentration), dtype=loc.dtype, device=loc.device)
    check_von_mises_parameters(op, loc.detach(), concentration.detach())
    shape = torch.broadcast_shapes(loc.shape, concentration.shape)
    if num_samples is not None:
        shape = (num_samples, *shape)
    dtype = torch.promote_types(loc.dtype, concentration.dtype)
    math_dtype = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    kappa = concentration.to(math_dtype).expand(shape)
    delta = _VonMisesOffset.apply(kappa, generator)
    x = wrap_angle(loc.to(math_dtype) + delta)
    return x.to(dtype)

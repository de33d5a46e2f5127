"""Gaussian reparameterized sampling: eager PyTorch vs torch.compile vs gradext, forward and
forward+backward, for several sizes and sample counts, on the CPU and on CUDA when present; and
torch.distributions.Normal(loc, scale).rsample(sample_shape) against gradext.distributions.Normal
(normal_rsample, the scale parametrization), at a VAE latent and at 2^22 samples.

    python -m gradext.bench.gaussian [--device cpu|cuda|all] [--quick]

Prints a markdown table and the speed targets, and writes
benchmarks/results/gaussian_<device>.{csv,md}.
"""

from __future__ import annotations

import sys

import torch

import gradext
from gradext.bench import harness

torch._dynamo.config.cache_size_limit = 64


def eager_rsample(mu, logvar, num_samples=None):
    """What a careful user writes in plain PyTorch."""
    if num_samples is None:
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
    eps = torch.randn((num_samples, *mu.shape), dtype=mu.dtype, device=mu.device)
    return mu + torch.exp(0.5 * logvar) * eps


def gradext_rsample(mu, logvar, num_samples=None):
    return gradext.gaussian_rsample(mu, logvar, num_samples)


def normal_cases(device: torch.device, quick: bool):
    """(batch, dim, sample_shape) of Normal(loc, scale).rsample(sample_shape): a VAE latent
    ([128, 20], pytorch/examples' VAE) and 2^22 samples (parameters [4096, 128], 8 samples)."""
    full = [(128, 20, ()), (4096, 128, (8,))]
    return full[1:] if quick and device.type == "cuda" else full


def cases(device: torch.device, quick: bool):
    """(batch, dim, num_samples) triples."""
    if device.type == "cuda":
        full = [(4096, 256, None), (65536, 1024, None), (8192, 1024, 8), (1024, 64, 64)]
        # (256, 64): a VAE minibatch's latent, where launches and Python dominate.
        return full[:2] if quick else [(256, 64, None), *full]
    full = [(256, 64, None), (4096, 256, None), (1024, 256, 16)]
    return full[1:2] if quick else full


def bytes_moved(batch, dim, num_samples, element_size, mode):
    n, k = batch * dim, num_samples or 1
    forward = (2 * n + k * n) * element_size  # read mu, logvar; write z
    backward = (k * n + n + 2 * n) * element_size  # read grad, logvar; write 2 grads
    return forward if mode == "forward" else forward + backward


def measure(device: torch.device, quick: bool) -> list[harness.Measurement]:
    compiled = torch.compile(eager_rsample)
    impls = {"eager": eager_rsample, "compile": compiled, "gradext": gradext_rsample}
    rows = []
    for batch, dim, k in cases(device, quick):
        mu = torch.randn(batch, dim, device=device, requires_grad=True)
        logvar = torch.randn(batch, dim, device=device, requires_grad=True)
        out_shape = (batch, dim) if k is None else (k, batch, dim)
        grad_out = torch.randn(out_shape, device=device)
        case = f"[{batch}, {dim}] K={k or 1}"
        rows += harness.time_modes(
            "gaussian_rsample",
            case,
            {name: (lambda fn=fn: fn(mu, logvar, k)) for name, fn in impls.items()},
            (mu, logvar),
            grad_out,
            device,
            lambda mode, b=batch, d=dim, k=k: bytes_moved(b, d, k, 4, mode),
        )
    return rows


def measure_normal(device: torch.device, quick: bool) -> list[harness.Measurement]:
    """The distribution classes as a user calls them: construction (validate_args off, as in
    training loops) and rsample. "eager" is torch's Normal, "compile" the same compiled."""
    from torch import distributions as td

    from gradext import distributions

    def torch_normal(loc, scale, shape):
        return td.Normal(loc, scale, validate_args=False).rsample(shape)

    def gradext_normal(loc, scale, shape):
        return distributions.Normal(loc, scale, validate_args=False).rsample(shape)

    impls = {
        "eager": torch_normal,
        "compile": torch.compile(torch_normal),
        "gradext": gradext_normal,
    }
    rows = []
    for batch, dim, shape in normal_cases(device, quick):
        loc = torch.randn(batch, dim, device=device, requires_grad=True)
        scale = (torch.rand(batch, dim, device=device) + 0.1).requires_grad_()
        grad_out = torch.randn(*shape, batch, dim, device=device)
        k = shape[0] if shape else None
        rows += harness.time_modes(
            "Normal.rsample",
            f"[{batch}, {dim}] sample_shape={shape}",
            {name: (lambda fn=fn: fn(loc, scale, shape)) for name, fn in impls.items()},
            (loc, scale),
            grad_out,
            device,
            lambda mode, b=batch, d=dim, k=k: bytes_moved(b, d, k, 4, mode),
        )
    return rows


def measure_all(device: torch.device, quick: bool) -> list[harness.Measurement]:
    return measure(device, quick) + measure_normal(device, quick)


def copy_bandwidth_gbps(device: torch.device) -> float:
    """Measured device-to-device copy bandwidth (bytes read + written), the forward's ceiling."""
    src = torch.empty(1 << 28, dtype=torch.float32, device=device)  # 1 GiB
    dst = torch.empty_like(src)
    ms, _ = harness.time_call(lambda: dst.copy_(src), device, cuda_repeats=20)
    return 2 * src.numel() * 4 / (ms * 1e-3) / 1e9


def report_targets(rows, device: torch.device) -> list[str]:
    ratio = harness.speedups(rows)
    lines = []

    def check(label, ok):
        lines.append(f"{'PASS' if ok else 'MISS'}  {label}")

    if device.type == "cpu":
        case = "[4096, 256] K=1"
        key = ("gaussian_rsample", case, "forward+backward")
        if key + ("gradext",) in ratio:
            r = ratio[key + ("gradext",)]
            vs_compile = r / ratio[key + ("compile",)]
            check(f"CPU fwd+bwd {case}: {r:.2f}x eager (target >= 4x)", r >= 4)
            check(
                f"CPU fwd+bwd {case}: {vs_compile:.2f}x torch.compile (target > 1x)", vs_compile > 1
            )
        normal_targets = {
            "[4096, 128] sample_shape=(8,)": (3.0, "target >= 3x"),
            "[128, 20] sample_shape=()": (1.0, "target: never slower"),
        }
        for case, (target, label) in normal_targets.items():
            key = ("Normal.rsample", case, "forward+backward", "gradext")
            if key in ratio:
                r = ratio[key]
                check(f"CPU Normal.rsample fwd+bwd {case}: {r:.2f}x torch's ({label})", r >= target)
    else:
        for case in ("[65536, 1024] K=1", "[8192, 1024] K=8"):
            for mode in ("forward", "forward+backward"):
                key = ("gaussian_rsample", case, mode)
                if key + ("gradext",) not in ratio:
                    continue
                r = ratio[key + ("gradext",)]
                vs_compile = r / ratio[key + ("compile",)]
                check(f"CUDA {mode} {case}: {r:.2f}x eager (target >= 3x)", r >= 3)
                check(
                    f"CUDA {mode} {case}: {vs_compile:.2f}x compile (target >= 1.2x)",
                    vs_compile >= 1.2,
                )
        for case in ("[128, 20] sample_shape=()", "[4096, 128] sample_shape=(8,)"):
            key = ("Normal.rsample", case, "forward+backward", "gradext")
            if key in ratio:
                lines.append(f"info  CUDA Normal.rsample fwd+bwd {case}: {ratio[key]:.2f}x torch's")
        copy = copy_bandwidth_gbps(device)
        for m in rows:
            if m.impl == "gradext" and m.mode == "forward" and m.case == "[65536, 1024] K=1":
                check(
                    f"CUDA forward at 2^26: {m.gbps:.0f} GB/s = {m.gbps / copy:.0%} of measured "
                    f"copy bandwidth {copy:.0f} GB/s (target >= 75%)",
                    m.gbps >= 0.75 * copy,
                )
    return lines


if __name__ == "__main__":
    sys.exit(harness.main("gaussian", __doc__.splitlines()[0], measure_all, report_targets))

"""Gamma sampling with pathwise gradients: torch.distributions.Gamma(...).rsample() in eager
PyTorch and under torch.compile vs gradext.gamma_rsample, forward and forward+backward, at a VAE
latent and at 2^22 elements, on the CPU and on CUDA when present; and the accuracy of the
implicit gradient dz/dconcentration, gradext's beside torch's _standard_gamma_grad, against
40-digit mpmath.

    python -m gradext.bench.gamma [--device cpu|cuda|all] [--quick]

Prints a markdown table and the speed targets, and writes
benchmarks/results/gamma_<device>.{csv,md}.
The eager baseline is built with validate_args=False: torch's default argument validation adds
a pass (and on CUDA a synchronization) that gradext's kernels do not need.
"""

from __future__ import annotations

import sys

import torch

import gradext
from gradext import reference
from gradext.bench import harness

torch._dynamo.config.cache_size_limit = 64


def eager_rsample(concentration, rate):
    """What a user of torch.distributions writes."""
    return torch.distributions.Gamma(concentration, rate, validate_args=False).rsample()


def gradext_rsample(concentration, rate):
    return gradext.gamma_rsample(concentration, rate)


def cases(device: torch.device, quick: bool):
    """(batch, dim): a VAE latent, and 2^22 elements."""
    full = [(4096, 64), (65536, 64)]
    return full[:1] if quick else full


def bytes_moved(numel, element_size, mode):
    forward = 3 * numel * element_size  # read concentration and rate, write z
    backward = 6 * numel * element_size  # read grad, z, concentration, rate; write 2 grads
    return forward if mode == "forward" else forward + backward


def measure(device: torch.device, quick: bool) -> list[harness.Measurement]:
    compiled = torch.compile(eager_rsample)
    impls = {"eager": eager_rsample, "compile": compiled, "gradext": gradext_rsample}
    rows = []
    generator = torch.Generator(device=device).manual_seed(0)
    for batch, dim in cases(device, quick):
        # Concentrations of a Gamma VAE's posterior: softplus outputs, mostly 0.5 to 3.5.
        concentration = torch.rand(batch, dim, device=device, generator=generator) * 3 + 0.5
        concentration.requires_grad_()
        rate = (torch.rand(batch, dim, device=device, generator=generator) + 0.5).requires_grad_()
        grad_out = torch.randn(batch, dim, device=device, generator=generator)
        rows += harness.time_modes(
            "gamma_rsample",
            f"[{batch}, {dim}]",
            {name: (lambda fn=fn: fn(concentration, rate)) for name, fn in impls.items()},
            (concentration, rate),
            grad_out,
            device,
            lambda mode, n=batch * dim: bytes_moved(n, 4, mode),
        )
    return rows


def gradient_accuracy(dtype: torch.dtype) -> tuple[float, float]:
    """Largest relative error of dz/dconcentration against 40-digit mpmath over concentrations
    1e-3 to 1e4 and samples from far below to far above each one's bulk (where the CDF is
    between 1e-12 and 1 - 1e-12: a sample can be drawn there): (gradext's backward op,
    torch._standard_gamma_grad), both given the same sample in `dtype`."""
    worst_gradext = worst_torch = 0.0
    for alpha in (1e-3, 1e-2, 0.1, 0.5, 1.0, 2.5, 10.0, 100.0, 1e3, 1e4):
        for z in (1e-30, 1e-6, 0.01 * alpha, 0.5 * alpha, alpha, 1.5 * alpha, 3 * alpha + 10):
            z_t = torch.tensor([z], dtype=dtype)
            cdf = torch.special.gammainc(torch.tensor(alpha, dtype=torch.float64), z_t.double())
            if not (z_t >= torch.finfo(dtype).tiny).all() or not 1e-12 <= cdf.item() <= 1 - 1e-12:
                continue
            expected = reference.gamma.mpmath_dz_dalpha(alpha, z_t.item())
            alpha_t = torch.tensor([alpha], dtype=dtype)
            ours, _ = torch.ops.gradext._gamma_rsample_backward(
                torch.ones_like(z_t), z_t, alpha_t, torch.ones_like(z_t), [True, False]
            )
            theirs = torch._standard_gamma_grad(alpha_t, z_t)
            worst_gradext = max(worst_gradext, abs(ours.item() - expected) / abs(expected))
            worst_torch = max(worst_torch, abs(theirs.item() - expected) / abs(expected))
    return worst_gradext, worst_torch


def report_targets(rows, device: torch.device) -> list[str]:
    lines = harness.speed_targets(rows, device, target=3)
    if device.type == "cpu" and gradext.has_extension():
        for dtype, target in ((torch.float64, 1e-10), (torch.float32, 1e-4)):
            ours, theirs = gradient_accuracy(dtype)
            label = (
                f"dz/dconcentration {dtype}: largest relative error {ours:.1e} (target <= "
                f"{target:.0e}); torch._standard_gamma_grad: {theirs:.1e}"
            )
            lines.append(harness.target_line(label, ours <= target))
    return lines


if __name__ == "__main__":
    sys.exit(harness.main("gamma", __doc__.splitlines()[0], measure, report_targets))

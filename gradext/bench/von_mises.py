"""von Mises sampling with pathwise gradients: a TFP-style von Mises rsample written in plain
PyTorch (torch.distributions.VonMises has no rsample) in eager PyTorch and under torch.compile vs
gradext.von_mises_rsample, forward and forward+backward, at a VAE latent and at 2^22 elements, on
the CPU and on CUDA when present; and the accuracy of the implicit gradient dx/dconcentration,
gradext's beside the TFP-style one, against 40-digit mpmath.

    python -m gradext.bench.von_mises [--device cpu|cuda|all] [--quick]

Prints a markdown table and the speed targets, and writes
benchmarks/results/von_mises_<device>.{csv,md}.

The baseline is what a user without gradext writes: torch.distributions.VonMises(...).sample()
(Best and Fisher's sampler, float64 inside) and TensorFlow Probability's gradient, the implicit
formula with the CDF's derivative in kappa from a 20-term Bessel-ratio series for kappa < 10.5
and from the derivative of a corrected normal approximation (Hill 1977) above, translated to
PyTorch.
"""

from __future__ import annotations

import math
import sys

import torch

import gradext
from gradext.bench import harness
from gradext.reference import von_mises as von_mises_reference

torch._dynamo.config.cache_size_limit = 64

# --- the TFP-style baseline -------------------------------------------------------------------

_SERIES_BELOW = 10.5  # TFP's switch from the series to the normal approximation
_SERIES_TERMS = 20


def _cdf_dkappa_series(x, kappa):
    """dF/dkappa from the Bessel-ratio series, by TFP's backward recursion with derivative."""
    rn = torch.zeros_like(x)
    drn = torch.zeros_like(x)
    vn = torch.zeros_like(x)
    dvn = torch.zeros_like(x)
    for n in range(_SERIES_TERMS, 0, -1):
        denominator = 2.0 * n / kappa + rn
        ddenominator = -2.0 * n / kappa**2 + drn
        rn = 1.0 / denominator
        drn = -ddenominator / denominator**2
        multiplier = torch.sin(n * x) / n + vn
        vn = rn * multiplier
        dvn = drn * multiplier + rn * dvn
    return dvn / math.pi


def _cdf_normal(x, kappa):
    """TFP's corrected normal approximation of the CDF (Hill 1977)."""
    z = (math.sqrt(2.0 / math.pi) / torch.special.i0e(kappa)) * torch.sin(0.5 * x)
    z2 = z * z
    z3 = z2 * z
    z4 = z2 * z2
    c = 24.0 * kappa
    xi = (
        z
        - z3 / ((c - 2.0 * z2 - 16.0) / 3.0 - (z4 + 1.75 * z2 + 83.5) / (c - 56.0 - z2 + 3.0)) ** 2
    )
    return torch.special.ndtr(xi)


def tfp_style_dx_dkappa(x, kappa):
    """TFP's implicit gradient of a von Mises(0, kappa) sample x in [-pi, pi]."""
    with torch.enable_grad():
        k = kappa.detach().requires_grad_()
        (d_normal,) = torch.autograd.grad(_cdf_normal(x, k).sum(), k)
    d_series = _cdf_dkappa_series(x, kappa)
    dcdf_dkappa = torch.where(kappa < _SERIES_BELOW, d_series, d_normal)
    inverse_density = torch.exp(-kappa * (torch.cos(x) - 1)) * (
        2 * math.pi * torch.special.i0e(kappa)
    )
    return -dcdf_dkappa * inverse_density


class _TfpStyleOffset(torch.autograd.Function):
    @staticmethod
    def forward(kappa):
        return torch.distributions.VonMises(
            torch.zeros_like(kappa), kappa, validate_args=False
        ).sample()

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0], output)

    @staticmethod
    def backward(ctx, grad):
        kappa, x = ctx.saved_tensors
        return grad * tfp_style_dx_dkappa(x, kappa)


def eager_rsample(loc, concentration):
    """What a user of torch.distributions writes, with TFP's gradient."""
    loc, concentration = torch.broadcast_tensors(loc, concentration)
    offset = _TfpStyleOffset.apply(concentration)
    return von_mises_reference.wrap_angle(loc + offset)


def gradext_rsample(loc, concentration):
    return gradext.von_mises_rsample(loc, concentration)


# --- timing -----------------------------------------------------------------------------------


def cases(device: torch.device, quick: bool):
    """(batch, dim): a VAE latent, and 2^22 elements."""
    full = [(4096, 64), (65536, 64)]
    return full[:1] if quick else full


def bytes_moved(numel, element_size, mode):
    forward = 3 * numel * element_size  # read loc and concentration, write x
    backward = 6 * numel * element_size  # read grad, x, loc, concentration; write 2 grads
    return forward if mode == "forward" else forward + backward


def measure(device: torch.device, quick: bool) -> list[harness.Measurement]:
    compiled = torch.compile(eager_rsample)
    impls = {"eager": eager_rsample, "compile": compiled, "gradext": gradext_rsample}
    rows = []
    generator = torch.Generator(device=device).manual_seed(0)
    for batch, dim in cases(device, quick):
        # An angular latent: locations anywhere, concentrations of a posterior, 0.5 to 20.5.
        loc = (torch.rand(batch, dim, device=device, generator=generator) * 6 - 3).requires_grad_()
        concentration = torch.rand(batch, dim, device=device, generator=generator) * 20 + 0.5
        concentration.requires_grad_()
        grad_out = torch.randn(batch, dim, device=device, generator=generator)
        rows += harness.time_modes(
            "von_mises_rsample",
            f"[{batch}, {dim}]",
            {name: (lambda fn=fn: fn(loc, concentration)) for name, fn in impls.items()},
            (loc, concentration),
            grad_out,
            device,
            lambda mode, n=batch * dim: bytes_moved(n, 4, mode),
        )
    return rows


# --- accuracy ---------------------------------------------------------------------------------


def gradient_accuracy(dtype: torch.dtype) -> tuple[float, float]:
    """Largest relative error of dx/dconcentration against 40-digit mpmath over concentrations
    1e-3 to 1e4 and offsets from the mode to 6 standard deviations (where the CDF's tail is above
    1e-9: a sample can be drawn there) and near pi: (gradext's backward op, the TFP-style
    formula), both given the same sample in `dtype`."""
    worst_gradext = worst_tfp = 0.0
    for kappa in (1e-3, 1e-2, 0.1, 0.5, 1.0, 2.5, 10.0, 30.0, 100.0, 1e3, 1e4):
        sigma = 1 / math.sqrt(kappa) if kappa > 1 else 1.0
        for multiple in (0.01, 0.5, 1.0, 2.0, 4.0, 6.0):
            delta = min(multiple * sigma, 3.0)
            x = torch.tensor([delta], dtype=dtype)
            expected = von_mises_reference.mpmath_ddelta_dkappa(kappa, x.item())
            k = torch.tensor([kappa], dtype=dtype)
            ours = torch.ops.gradext._von_mises_rsample_backward(
                torch.ones_like(x), x, torch.zeros_like(x), k
            )
            theirs = tfp_style_dx_dkappa(x, k)
            worst_gradext = max(worst_gradext, abs(ours.item() - expected) / abs(expected))
            worst_tfp = max(worst_tfp, abs(theirs.item() - expected) / abs(expected))
    return worst_gradext, worst_tfp


def report_targets(rows, device: torch.device) -> list[str]:
    lines = harness.speed_targets(rows, device, target=3)
    if device.type == "cpu" and gradext.has_extension():
        for dtype, target in ((torch.float64, 1e-10), (torch.float32, 1e-4)):
            ours, theirs = gradient_accuracy(dtype)
            label = (
                f"dx/dconcentration {dtype}: largest relative error {ours:.1e} (target <= "
                f"{target:.0e}); TFP-style formula: {theirs:.1e}"
            )
            lines.append(harness.target_line(label, ours <= target))
    return lines


if __name__ == "__main__":
    sys.exit(harness.main("von_mises", __doc__.splitlines()[0], measure, report_targets))

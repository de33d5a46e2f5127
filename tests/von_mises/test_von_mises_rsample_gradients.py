"""von_mises_rsample's gradients. Accuracy: dx/dconcentration against 40-digit mpmath quadrature
of the implicit-function formula (relative error at most 1e-10 in float64 and 1e-4 in float32,
concentrations 1e-3 to 1e7, offsets from the mode to 7 standard deviations and to pi), on the
op's own samples and on a grid, on every CPU variant, and the fallback's maths beside it.
dx/dloc is 1. Unbiasedness, by z-tests (|z| < 4.5 over 200,000 samples, at fixed seeds): the
mean gradient of E[cos x] in the concentration matches d(A(kappa) cos loc)/dkappa, A = I1 / I0,
and of E[sin x] in loc matches A cos loc, on the kernels and the fallback."""

from __future__ import annotations

import math

import pytest
import torch

import gradext
from gradext import reference
from gradext.reference import von_mises as von_mises_reference
from helpers.common import requires_extension
from helpers.paths import cpu_variants_supported, on_path

F64 = dict(dtype=torch.float64)


def _grid():
    """(kappa, delta) pairs: each concentration's offsets at 0.001 to 7 standard deviations
    (capped below pi) and near pi, on both sides of the mode."""
    points = []
    for kappa in (1e-3, 0.1, 1.0, 3.0, 10.0, 49.0, 51.0, 100.0, 1e3, 1e4, 1e7):
        sigma = 1 / math.sqrt(kappa) if kappa > 1 else 1.0
        for multiple in (0.001, 0.3, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0):
            delta = min(multiple * sigma, 3.1)
            if 2 * kappa * (1 - math.cos(delta)) <= 98:  # probability above 1e-21
                points.append((kappa, delta))
        points.append((kappa, -0.5 * sigma))
        if kappa < 20:
            points.append((kappa, math.pi - 1e-6))
    return points


def _backward(kappa, x, loc=None, dtype=torch.float64):
    x = torch.as_tensor(x, dtype=dtype)
    loc = torch.zeros_like(x) if loc is None else torch.as_tensor(loc, dtype=dtype)
    kappa = torch.as_tensor(kappa, dtype=dtype)
    return torch.ops.gradext._von_mises_rsample_backward(torch.ones_like(x), x, loc, kappa)


@requires_extension
@pytest.mark.parametrize("variant", cpu_variants_supported())
@pytest.mark.parametrize(
    "dtype, tolerance", [(torch.float64, 1e-10), (torch.float32, 1e-4)], ids=["float64", "float32"]
)
def test_implicit_gradient_against_mpmath_on_a_grid(variant, dtype, tolerance):
    points = _grid()
    kappa = torch.tensor([k for k, _ in points], dtype=dtype)
    delta = torch.tensor([d for _, d in points], dtype=dtype)
    with on_path(f"cpu-{variant}"):
        got = _backward(kappa, delta, dtype=dtype)
    worst = 0.0
    for k, d, g in zip(kappa.tolist(), delta.tolist(), got.tolist()):
        expected = von_mises_reference.mpmath_ddelta_dkappa(k, d)  # at the stored values
        worst = max(worst, abs(g - expected) / abs(expected))
    assert worst <= tolerance, worst


def test_the_fallback_maths_against_mpmath():
    points = _grid()
    kappa = torch.tensor([k for k, _ in points], **F64)
    delta = torch.tensor([d for _, d in points], **F64)
    got = von_mises_reference.von_mises_ddelta_dkappa(kappa, delta)
    for k, d, g in zip(kappa.tolist(), delta.tolist(), got.tolist()):
        expected = von_mises_reference.mpmath_ddelta_dkappa(k, d)
        assert abs(g - expected) <= 1e-10 * abs(expected), (k, d, g, expected)


@requires_extension
def test_gradients_on_the_ops_own_samples_against_mpmath():
    """The saved sample, wrapped, is what the backward reads: loc far outside [-pi, pi), K
    samples, broadcast concentration."""
    kappa = torch.tensor([1e-3, 0.4, 2.0, 25.0, 900.0], **F64).requires_grad_()
    loc = torch.tensor([[9.0], [-3.1], [0.2]], **F64).requires_grad_()
    x = gradext.von_mises_rsample(loc, kappa, 2, generator=torch.Generator().manual_seed(6))
    upstream = torch.randn(x.shape, generator=torch.Generator().manual_seed(1), **F64)
    grad_loc, grad_kappa = torch.autograd.grad(x, (loc, kappa), upstream)
    torch.testing.assert_close(grad_loc, upstream.sum((0, 2)).reshape(3, 1), rtol=0, atol=1e-15)
    expected = torch.zeros(5, **F64)
    for k in range(2):
        for i in range(3):
            for j in range(5):
                delta = math.remainder(x[k, i, j].item() - loc[i, 0].item(), 2 * math.pi)
                expected[j] += upstream[k, i, j] * von_mises_reference.mpmath_ddelta_dkappa(
                    kappa[j].item(), delta
                )
    torch.testing.assert_close(grad_kappa, expected, rtol=1e-10, atol=0)


def _mean_and_error(values):
    return values.mean().item(), values.std().item() / math.sqrt(values.numel())


@pytest.mark.parametrize("kappa, loc", [(0.3, 0.5), (2.0, 3.0), (40.0, -1.0)])
def test_gradients_are_unbiased(implementation, kappa, loc):
    """z-tests: per-sample gradients of cos x in kappa and of sin x in loc, averaged over 200,000
    samples, against the derivatives of E[cos x] = A cos loc and E[sin x] = A sin loc."""
    n = 200_000
    k = torch.full((n,), kappa, **F64).requires_grad_()
    m = torch.full((n,), loc, **F64).requires_grad_()
    x = gradext.von_mises_rsample(m, k, generator=torch.Generator().manual_seed(11))
    (d_cos_dk,) = torch.autograd.grad(torch.cos(x).sum(), k, retain_graph=True)
    (d_sin_dm,) = torch.autograd.grad(torch.sin(x).sum(), m)
    a, one_minus_a = von_mises_reference.bessel_ratio(torch.tensor([kappa], **F64))
    a = a.item()
    da_dk = 1 - a / kappa - a * a  # A' = 1 - A / kappa - A^2
    for values, expected in ((d_cos_dk, da_dk * math.cos(loc)), (d_sin_dm, a * math.cos(loc))):
        mean, error = _mean_and_error(values)
        assert abs(mean - expected) < 4.5 * error, (mean, expected, error)


def test_a_biased_gradient_fails_the_z_test():
    """The z-test above can fail: the same mean with the implicit gradient scaled by 1.02."""
    n = 200_000
    k = torch.full((n,), 2.0, **F64).requires_grad_()
    x = gradext.von_mises_rsample(
        torch.zeros(n, **F64), k, generator=torch.Generator().manual_seed(11)
    )
    (d_cos_dk,) = torch.autograd.grad(torch.cos(x).sum(), k)
    a = von_mises_reference.bessel_ratio(torch.tensor([2.0], **F64))[0].item()
    mean, error = _mean_and_error(1.02 * d_cos_dk)
    assert abs(mean - (1 - a / 2.0 - a * a)) > 4.5 * error


def test_bessel_ratio_against_torch_special():
    kappa = torch.tensor([1e-3, 0.5, 3.0, 49.9, 50.0, 80.0, 1e3, 1e6], **F64)
    a, one_minus_a = von_mises_reference.bessel_ratio(kappa)
    expected = torch.special.i1e(kappa) / torch.special.i0e(kappa)
    torch.testing.assert_close(a, expected, rtol=1e-14, atol=0)
    import mpmath

    with mpmath.workdps(40):  # 1 - A to full relative precision, also where A rounds to 1
        exact = [1 - mpmath.besseli(1, k) / mpmath.besseli(0, k) for k in kappa.tolist()]
    torch.testing.assert_close(
        one_minus_a, torch.tensor([float(v) for v in exact], **F64), rtol=1e-14, atol=0
    )


def test_reference_exported_names():
    assert reference.von_mises_rsample is von_mises_reference.von_mises_rsample


@requires_extension
@pytest.mark.parametrize("variant", cpu_variants_supported())
def test_the_backward_lanes_are_the_header_function_bitwise(von_mises_math, variant):
    """The backward's vector lanes (1 - A, the bulk and gentle-tail quadratures) give the scalar
    header function's d delta / d kappa (the CUDA kernel's code, through the ctypes shim)
    bitwise, every form mixed in the tiles, on every CPU variant."""
    kappa = torch.tensor([1e-3, 0.3, 2.0, 11.0, 45.0, 80.0, 1e4, 1e7] * 40, **F64)
    with on_path(f"cpu-{variant}"):
        x = torch.ops.gradext._von_mises_rsample_seeded(torch.zeros((), **F64), kappa, 3, 4, 1)
        got = _backward(kappa, x)
    expected = [
        von_mises_math.gradext_von_mises_ddelta_dkappa(k, d)
        for k, d in zip(kappa.repeat(3).tolist(), x.reshape(-1).tolist())
    ]
    assert got.reshape(-1).tolist() == expected


@requires_extension
@pytest.mark.parametrize("variant", cpu_variants_supported())
def test_tiles_give_each_elements_own_value(variant):
    """The backward computes 1 - A for a tile of elements in vector lanes, each lane with its own
    number of fraction steps: a tile mixing concentrations (short and long fractions, Hankel's
    series) gives every element bitwise what it gets alone, in a tile of one."""
    kappa = torch.tensor([0.01, 45.0, 2.0, 80.0, 0.7, 30.0, 1e4, 12.0] * 20, **F64)
    with on_path(f"cpu-{variant}"):
        x = torch.ops.gradext._von_mises_rsample_seeded(torch.zeros((), **F64), kappa, None, 3, 1)
        together = _backward(kappa, x)
        alone = torch.cat([_backward(kappa[i : i + 1], x[i : i + 1]) for i in range(x.numel())])
    assert torch.equal(together, alone)

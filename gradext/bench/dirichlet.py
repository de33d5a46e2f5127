"""Dirichlet and Beta sampling with pathwise gradients: torch.distributions.Dirichlet /
Beta(...).rsample() in eager PyTorch and under torch.compile vs gradext.dirichlet_rsample /
beta_rsample, forward and forward+backward, at a VAE latent and at 2^22 elements, on the CPU and
on CUDA when present.

    python -m gradext.bench.dirichlet [--device cpu|cuda|all] [--quick]

Prints a markdown table and writes benchmarks/results/dirichlet_<device>.{csv,md}. The eager
baselines are built with validate_args=False (torch's default validation adds a pass and, on
CUDA, a synchronization).
"""

from __future__ import annotations

import sys

import torch

import gradext
from gradext.bench import harness

torch._dynamo.config.cache_size_limit = 64


def eager_dirichlet(concentration):
    return torch.distributions.Dirichlet(concentration, validate_args=False).rsample()


def eager_beta(concentration1, concentration0):
    return torch.distributions.Beta(concentration1, concentration0, validate_args=False).rsample()


def cases(device: torch.device, quick: bool):
    """(batch, categories): a latent of 64-entry simplices (a topic model's), and 2^22 entries."""
    full = [(4096, 64), (65536, 64)]
    return full[:1] if quick else full


def bytes_moved(entries, element_size, mode):
    """gradext's ideal traffic per simplex entry: the forward reads the concentration and writes
    x and log g; the backward reads grad, x, log g and the concentration and writes the
    gradient. (beta_rsample's entries: two per sample.)"""
    forward = 3 * entries * element_size
    backward = 5 * entries * element_size
    return forward if mode == "forward" else forward + backward


def measure(device: torch.device, quick: bool) -> list[harness.Measurement]:
    impls = {
        "dirichlet_rsample": {
            "eager": eager_dirichlet,
            "compile": torch.compile(eager_dirichlet),
            "gradext": gradext.dirichlet_rsample,
        },
        "beta_rsample": {
            "eager": eager_beta,
            "compile": torch.compile(eager_beta),
            "gradext": gradext.beta_rsample,
        },
    }
    rows = []
    generator = torch.Generator(device=device).manual_seed(0)

    def parameter(*shape):
        values = torch.rand(*shape, device=device, generator=generator) * 3 + 0.5
        return values.requires_grad_()

    for batch, dim in cases(device, quick):
        grad_out = torch.randn(batch, dim, device=device, generator=generator)
        for op, fns in impls.items():
            inputs = (parameter(batch, dim),)
            if op == "beta_rsample":
                inputs = (parameter(batch, dim), parameter(batch, dim))
            rows += harness.time_modes(
                op,
                f"[{batch}, {dim}]",
                {name: (lambda fn=fn, inputs=inputs: fn(*inputs)) for name, fn in fns.items()},
                inputs,
                grad_out,
                device,
                lambda mode, n=batch * dim * (2 if op == "beta_rsample" else 1): bytes_moved(
                    n, 4, mode
                ),
            )
    return rows


def report_targets(rows, device: torch.device) -> list[str]:
    return harness.speed_targets(rows, device, target=3)


if __name__ == "__main__":
    sys.exit(harness.main("dirichlet", __doc__.splitlines()[0], measure, report_targets))

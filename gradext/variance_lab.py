"""The estimator lab: mean and variance of gradient estimators of d/d mu E_{z ~ N(mu, 1)}[f(z)],
measured with gradext's own ops over many independent replicates.

Three estimators of the same gradient, each averaging K samples:
    pathwise              d f(z) / d mu through z = mu + eps       (gaussian_rsample)
    score_function        f(z) * d log q(z) / d mu, no baseline     (plain REINFORCE)
    score_function_loo    the same with the leave-one-out baseline  (score_function_loo)

For f(z) = z^2 (docs/design.md) the true gradient is 2 mu and the single-sample variances are 4
(pathwise) and mu^4 + 14 mu^2 + 15 (score function); a K-sample average divides them by K.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from gradext.gaussian import gaussian_rsample
from gradext.score_function import score_function_loo

ESTIMATORS = ("pathwise", "score_function", "score_function_loo")


@dataclass(frozen=True)
class GradientStatistics:
    estimator: str
    mu: float
    num_samples: int
    replicates: int
    mean: float
    variance: float
    mean_standard_error: float  # of `mean`
    variance_standard_error: float  # of `variance`, from the sample fourth moment

    def z_mean(self, expected: float) -> float:
        return (self.mean - expected) / self.mean_standard_error

    def z_variance(self, expected: float) -> float:
        return (self.variance - expected) / self.variance_standard_error


def square(z: torch.Tensor) -> torch.Tensor:
    return z * z


def analytic_square(mu: float, num_samples: int) -> dict[str, tuple[float, float | None]]:
    """(gradient, variance of the K-sample estimate) for f(z) = z^2; None where there is no
    closed form worth quoting (the leave-one-out estimator's variance)."""
    return {
        "pathwise": (2 * mu, 4 / num_samples),
        "score_function": (2 * mu, (mu**4 + 14 * mu**2 + 15) / num_samples),
        "score_function_loo": (2 * mu, None),
    }


def _estimates(
    estimator: str, f, mu: torch.Tensor, num_samples: int, generator: torch.Generator
) -> torch.Tensor:
    """One gradient estimate per replicate: d/d mu[r] of the replicate's K-sample objective."""
    logvar = torch.zeros((), dtype=mu.dtype)
    if estimator == "pathwise":
        z = gaussian_rsample(mu, logvar, num_samples, generator=generator)  # [K, R]
        objective = f(z).mean(0)
    else:
        z = gaussian_rsample(mu.detach(), logvar, num_samples, generator=generator)
        log_prob = -0.5 * (z - mu) ** 2  # log N(z; mu, 1) up to a constant
        values = f(z)
        if estimator == "score_function":
            objective = (values.detach() * log_prob).mean(0)
        else:
            objective = score_function_loo(values, log_prob, 0)
    (grad,) = torch.autograd.grad(objective.sum(), mu)
    return grad


def gradient_statistics(
    f: Callable[[torch.Tensor], torch.Tensor] = square,
    mu: float = 1.0,
    num_samples: int = 1,
    replicates: int = 100_000,
    estimators=ESTIMATORS,
    seed: int = 0,
) -> list[GradientStatistics]:
    """Mean and variance over `replicates` independent K-sample estimates of d/d mu E[f(z)],
    z ~ N(mu, 1), for each estimator. f maps a tensor of samples to values elementwise."""
    if num_samples < 1 or (num_samples < 2 and "score_function_loo" in estimators):
        raise ValueError(
            f"num_samples must be >= 1, and >= 2 for score_function_loo, got {num_samples}"
        )
    if replicates < 2:
        raise ValueError(f"replicates must be >= 2, got {replicates}")
    unknown = set(estimators) - set(ESTIMATORS)
    if unknown:
        raise ValueError(f"unknown estimators {sorted(unknown)}; choose from {ESTIMATORS}")
    results = []
    for estimator in estimators:
        generator = torch.Generator().manual_seed(seed)
        mu_rep = torch.full((replicates,), float(mu), dtype=torch.float64, requires_grad=True)
        g = _estimates(estimator, f, mu_rep, num_samples, generator)
        mean = g.mean().item()
        centered = g - mean
        variance = centered.square().mean().item() * replicates / (replicates - 1)
        fourth = centered.pow(4).mean().item()
        results.append(
            GradientStatistics(
                estimator,
                float(mu),
                num_samples,
                replicates,
                mean,
                variance,
                math.sqrt(variance / replicates),
                math.sqrt(max(fourth - variance**2, 0.0) / replicates),
            )
        )
    return results


def format_table(rows: list[GradientStatistics], analytic=analytic_square) -> str:
    lines = [
        "| estimator | mu | K | mean | analytic mean | variance | analytic variance |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        true_mean, true_var = (
            analytic(r.mu, r.num_samples)[r.estimator] if analytic else (None, None)
        )
        fmt = lambda v: "" if v is None else f"{v:.4g}"  # noqa: E731
        lines.append(
            f"| {r.estimator} | {r.mu:g} | {r.num_samples} | {r.mean:.4g} ± "
            f"{r.mean_standard_error:.2g} | {fmt(true_mean)} | {r.variance:.4g} ± "
            f"{r.variance_standard_error:.2g} | {fmt(true_var)} |"
        )
    return "\n".join(lines)

"""The estimator lab: mean and variance of gradient estimators of d/d theta E_{q_theta}[f(z)],
measured with gradext's own ops over many independent replicates, for two distributions.

Gaussian, z ~ N(mu, 1), theta = mu; three estimators of the same gradient, each averaging K
samples:
    pathwise              d f(z) / d mu through z = mu + eps       (gaussian_rsample)
    score_function        f(z) * d log q(z) / d mu, no baseline     (plain REINFORCE)
    score_function_loo    the same with the leave-one-out baseline  (score_function_loo)
For f(z) = z^2 (docs/design.md) the true gradient is 2 mu and the single-sample variances are 4
(pathwise) and mu^4 + 14 mu^2 + 15 (score function); a K-sample average divides them by K.

Gamma, z ~ Gamma(alpha, 1), theta = alpha: no location-scale reparameterization exists, and
the three answers to that are compared on one table:
    implicit              d f(z) / d alpha through the implicit gradient dz/dalpha
                          (gamma_rsample; Figurnov, Mohamed and Mnih 2018)
    score_function        f(z) (log z - psi(alpha)), no baseline
    score_function_loo    the same with the leave-one-out baseline  (score_function_loo)
    grg                   the generalized reparameterization gradient of Ruiz, Titsias and Blei
                          (2016), with their Gamma transformation z = exp(psi(alpha) + eps
                          sqrt(psi_1(alpha))): a reparameterization term f'(z) dz/dalpha at fixed
                          eps plus a score-function correction for eps's remaining dependence
                          on alpha
For f(z) = z^2 the true gradient is 2 alpha + 1, and the plain score function's single-sample
variance is alpha^(4) ((psi(alpha + 4) - psi(alpha))^2 + psi_1(alpha + 4)) - (2 alpha + 1)^2,
alpha^(4) = alpha (alpha + 1) (alpha + 2) (alpha + 3), from E[z^k (log z)^j] of the Gamma law.

Bernoulli, b ~ Bernoulli(sigmoid(theta)), the toy problem of the REBAR and RELAX papers,
f(b) = (b - t)^2 (+ an offset): every estimator gradext has for a discrete latent, one sample
each (K for the leave-one-out baseline):
    reinforce             f(b) d log p(b) / d theta                 (rebar with eta = 0)
    score_function_loo    K samples, the leave-one-out baseline     (score_function_loo)
    concrete              d f(soft) / d theta, the relaxed sample   (gumbel_sigmoid; biased)
    straight_through      d f(b) through the soft sample's slope    (gumbel_sigmoid hard; biased)
    rebar                 eta = 1, tau = 0.5                        (rebar)
    rebar_tuned           eta and tau tuned on the estimator's variance (variance_loss)
    relax                 a small MLP control variate trained on the variance (relax)
True gradient sigmoid'(theta) (1 - 2 t); REINFORCE's single-sample variance
p (1 - p)^2 f(1)^2 + (1 - p) p^2 f(0)^2 - gradient^2 with p = sigmoid(theta). VIMCO bounds a
log-mean of weights, not E[f]: it has no row here.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from gradext.conditional_relaxation import conditional_relaxation
from gradext.control_variates import rebar, relax, variance_loss
from gradext.gamma import gamma_rsample
from gradext.gaussian import gaussian_rsample
from gradext.relaxed import gumbel_sigmoid
from gradext.score_function import score_function_loo

ESTIMATORS = ("pathwise", "score_function", "score_function_loo")
GAMMA_ESTIMATORS = ("implicit", "score_function", "score_function_loo", "grg")
BERNOULLI_ESTIMATORS = (
    "reinforce",
    "score_function_loo",
    "concrete",
    "straight_through",
    "rebar",
    "rebar_tuned",
    "relax",
)


@dataclass(frozen=True)
class GradientStatistics:
    estimator: str
    mu: float  # the parameter theta: mu for the Gaussian, alpha for the Gamma
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
    _check_arguments(num_samples, replicates, estimators, ESTIMATORS)
    return _replicated(_estimates, f, mu, num_samples, replicates, estimators, seed)


def _replicated(estimates, f, theta, num_samples, replicates, estimators, seed):
    """GradientStatistics of each estimator: estimates(estimator, f, theta_rep, K, generator)
    gives one estimate per replicate of theta_rep (`replicates` copies of theta that require
    grad); every estimator sees the same seed (common random numbers)."""
    results = []
    for estimator in estimators:
        generator = torch.Generator().manual_seed(seed)
        theta_rep = torch.full((replicates,), float(theta), dtype=torch.float64, requires_grad=True)
        g = estimates(estimator, f, theta_rep, num_samples, generator)
        results.append(_statistics(estimator, theta, num_samples, g))
    return results


def _statistics(estimator: str, theta: float, num_samples: int, g: torch.Tensor):
    """GradientStatistics of the replicates' estimates g."""
    replicates = g.numel()
    mean = g.mean().item()
    centered = g - mean
    variance = centered.square().mean().item() * replicates / (replicates - 1)
    fourth = centered.pow(4).mean().item()
    return GradientStatistics(
        estimator,
        float(theta),
        num_samples,
        replicates,
        mean,
        variance,
        math.sqrt(variance / replicates),
        math.sqrt(max(fourth - variance**2, 0.0) / replicates),
    )


def _check_arguments(num_samples, replicates, estimators, known):
    if num_samples < 1 or (num_samples < 2 and "score_function_loo" in estimators):
        raise ValueError(
            f"num_samples must be >= 1, and >= 2 for score_function_loo, got {num_samples}"
        )
    if replicates < 2:
        raise ValueError(f"replicates must be >= 2, got {replicates}")
    unknown = set(estimators) - set(known)
    if unknown:
        raise ValueError(f"unknown estimators {sorted(unknown)}; choose from {known}")


# --- Gamma(alpha, 1) -----------------------------------------------------------------------


def analytic_gamma_square(alpha: float, num_samples: int) -> dict[str, tuple[float, float | None]]:
    """(gradient, variance of the K-sample estimate) of d/d alpha E[z^2], z ~ Gamma(alpha, 1);
    None where there is no closed form worth quoting."""
    a = torch.tensor(alpha, dtype=torch.float64)
    rising4 = alpha * (alpha + 1) * (alpha + 2) * (alpha + 3)
    second_moment = (
        rising4
        * ((torch.digamma(a + 4) - torch.digamma(a)) ** 2 + torch.polygamma(1, a + 4)).item()
    )
    gradient = 2 * alpha + 1
    return {
        "implicit": (gradient, None),
        "score_function": (gradient, (second_moment - gradient**2) / num_samples),
        "score_function_loo": (gradient, None),
        "grg": (gradient, None),
    }


def _gamma_estimates(estimator, f, alpha, num_samples, generator) -> torch.Tensor:
    """One estimate per replicate of d/d alpha[r] of the replicate's K-sample objective."""
    if estimator == "implicit":
        z = gamma_rsample(alpha, 1.0, num_samples, generator=generator)  # [K, R]
        (grad,) = torch.autograd.grad(f(z).mean(0).sum(), alpha)
        return grad
    a = alpha.detach()
    z = gamma_rsample(a, 1.0, num_samples, generator=generator)
    log_z = torch.log(z)
    if estimator != "grg":
        log_prob = (alpha - 1) * log_z - z - torch.lgamma(alpha)  # d/d alpha: log z - psi(alpha)
        values = f(z)
        if estimator == "score_function":
            objective = (values.detach() * log_prob).mean(0)
        else:
            objective = score_function_loo(values, log_prob, 0)
        (grad,) = torch.autograd.grad(objective.sum(), alpha)
        return grad
    # GRG: z = T(eps; alpha) = exp(m + eps s), m = psi(alpha), s = sqrt(psi_1(alpha)).
    m, s = torch.digamma(a), torch.sqrt(torch.polygamma(1, a))
    dm, ds = torch.polygamma(1, a), torch.polygamma(2, a) / (2 * s)
    eps = (log_z - m) / s
    h = z * (dm + eps * ds)  # dT/dalpha at fixed eps
    leaf = z.clone().requires_grad_()
    values = f(leaf)
    (f_prime,) = torch.autograd.grad(values.sum(), leaf)
    values = values.detach()
    score = log_z - m  # d log q(z; alpha) / d alpha at fixed z
    d_log_q_dz = (a - 1) / z - 1
    d_log_jacobian = dm + eps * ds + ds / s  # d/d alpha of log |dT/deps| = m + eps s + log s
    g = f_prime * h + values * (score + h * d_log_q_dz + d_log_jacobian)
    return g.mean(0)


def gamma_gradient_statistics(
    f: Callable[[torch.Tensor], torch.Tensor] = None,
    alpha: float = 1.0,
    num_samples: int = 1,
    replicates: int = 100_000,
    estimators=GAMMA_ESTIMATORS,
    seed: int = 0,
) -> list[GradientStatistics]:
    """Mean and variance over `replicates` independent K-sample estimates of d/d alpha E[f(z)],
    z ~ Gamma(alpha, 1) (f(z) = z^2 by default), for each estimator."""
    f = square if f is None else f
    if not alpha > 0:
        raise ValueError(f"alpha must be positive, got {alpha}")
    _check_arguments(num_samples, replicates, estimators, GAMMA_ESTIMATORS)
    return _replicated(_gamma_estimates, f, alpha, num_samples, replicates, estimators, seed)


# --- Bernoulli(sigmoid(theta)), the REBAR / RELAX toy problem ------------------------------


def toy_objective(target: float = 0.45, offset: float = 0.0):
    """f(b) = (b - target)^2 + offset, elementwise."""

    def f(b: torch.Tensor) -> torch.Tensor:
        return (b - target) ** 2 + offset

    return f


def analytic_bernoulli(f) -> Callable[[float, int], dict[str, tuple[float, float | None]]]:
    """(gradient, variance) per estimator for the toy f: REINFORCE's variance in closed form."""

    def analytic(theta: float, num_samples: int) -> dict[str, tuple[float, float | None]]:
        p = 1 / (1 + math.exp(-theta))
        f1, f0 = f(torch.tensor(1.0)).item(), f(torch.tensor(0.0)).item()
        gradient = p * (1 - p) * (f1 - f0)
        second = p * (1 - p) ** 2 * f1**2 + (1 - p) * p**2 * f0**2
        rows = {e: (gradient, None) for e in BERNOULLI_ESTIMATORS}
        rows["reinforce"] = (gradient, second - gradient**2)
        return rows

    return analytic


@dataclass(frozen=True)
class TunedControlVariates:
    """What the tuned estimators of the Bernoulli toy use, fitted on noise of their own:
    REBAR's (eta, tau) and RELAX's control variate (None where not asked for)."""

    rebar: tuple[torch.Tensor, torch.Tensor] | None
    relax: Callable[[torch.Tensor], torch.Tensor] | None


def tune_control_variates(
    f, theta: float = 0.4, estimators=BERNOULLI_ESTIMATORS, seed: int = 0
) -> TunedControlVariates:
    """Tunes REBAR's eta and tau ("rebar_tuned") and trains RELAX's control variate ("relax")
    by minimizing their estimators' variance (variance_loss), each where `estimators` has it."""
    return TunedControlVariates(
        _tuned_rebar_parameters(f, theta, seed) if "rebar_tuned" in estimators else None,
        _trained_control_variate(f, theta, seed) if "relax" in estimators else None,
    )


def _tuned_rebar_parameters(f, theta, seed, steps=200, batch=512):
    """eta and tau minimizing the REBAR estimator's variance by Adam on variance_loss (tau in
    log space; a tau that requires grad runs the pure-PyTorch relaxation)."""
    eta = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    log_tau = torch.tensor(math.log(0.5), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.Adam([eta, log_tau], lr=0.05)
    generator = torch.Generator().manual_seed(seed + 1)
    for _ in range(steps):
        logits = torch.full((batch,), theta, dtype=torch.float64, requires_grad=True)
        estimate = rebar(f, logits, log_tau.exp(), eta, generator=generator)
        optimizer.zero_grad()
        variance_loss(estimate, logits, [eta, log_tau]).backward()
        optimizer.step()
    return eta.detach(), log_tau.detach().exp()


def _trained_control_variate(f, theta, seed, steps=300, batch=256):
    """RELAX's control variate: an MLP on the relaxed sample trained by Adam on variance_loss."""
    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Linear(1, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)
    ).double()

    def c(z):
        return net(z.unsqueeze(-1)).squeeze(-1)

    optimizer = torch.optim.Adam(net.parameters(), lr=0.02)
    generator = torch.Generator().manual_seed(seed + 2)
    for _ in range(steps):
        logits = torch.full((batch,), theta, dtype=torch.float64, requires_grad=True)
        estimate = relax(f, logits, c, 0.5, generator=generator)
        optimizer.zero_grad()
        variance_loss(estimate, logits, net.parameters()).backward()
        optimizer.step()
    return c


def _bernoulli_estimates(estimator, f, theta, num_samples, generator, tuned) -> torch.Tensor:
    """One estimate per replicate of d/d theta[r] E[f(b)]."""
    if estimator == "score_function_loo":
        logits = theta.expand(num_samples, -1)
        b, _, _ = conditional_relaxation(logits.detach(), generator=generator)
        log_prob = -torch.nn.functional.binary_cross_entropy_with_logits(
            logits, b, reduction="none"
        )
        objective = score_function_loo(f(b), log_prob, 0)
    elif estimator in ("concrete", "straight_through"):
        z = gumbel_sigmoid(theta, 0.5, hard=estimator == "straight_through", generator=generator)
        objective = f(z)
    elif estimator == "relax":
        objective = relax(f, theta, tuned.relax, 0.5, generator=generator)
    else:
        eta, tau = {"reinforce": (0.0, 0.5), "rebar": (1.0, 0.5)}.get(estimator, tuned.rebar)
        objective = rebar(f, theta, tau, eta, generator=generator)
    (grad,) = torch.autograd.grad(objective.sum(), theta)
    return grad


def bernoulli_gradient_statistics(
    f=None,
    theta: float = 0.4,
    num_samples: int = 2,
    replicates: int = 100_000,
    estimators=BERNOULLI_ESTIMATORS,
    seed: int = 0,
    tuned: TunedControlVariates | None = None,
) -> list[GradientStatistics]:
    """Mean and variance over `replicates` independent estimates of d/d theta E[f(b)], b ~
    Bernoulli(sigmoid(theta)) (f = toy_objective() by default), for each estimator; K =
    num_samples for the leave-one-out baseline, one sample for the others. The tuned REBAR and
    RELAX use `tuned` (tune_control_variates(f, theta, estimators, seed) when None: tuned on
    noise of their own), then are measured like the rest."""
    f = toy_objective() if f is None else f
    _check_arguments(num_samples, replicates, estimators, BERNOULLI_ESTIMATORS)
    if tuned is None:
        tuned = tune_control_variates(f, theta, estimators, seed)
    estimates = functools.partial(_bernoulli_estimates, tuned=tuned)
    rows = []
    for estimator in estimators:
        k = num_samples if estimator == "score_function_loo" else 1
        rows += _replicated(estimates, f, theta, k, replicates, [estimator], seed)
    return rows


def format_table(
    rows: list[GradientStatistics], analytic=analytic_square, parameter: str = "mu"
) -> str:
    lines = [
        f"| estimator | {parameter} | K | mean | analytic mean | variance | analytic variance |",
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

"""The demo's two models, written once against an `ops` namespace that is either gradext (the
fused kernels) or gradext.reference (the same ops in plain PyTorch), so the two runs differ
only in the ops."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

DISCRETE_ESTIMATORS = (
    "st_gumbel",
    "gumbel_softmax",
    "rloo",
    "vimco",
    "reinforce",
    "rebar",
    "relax",
)


def _mlp(inputs: int, hidden: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inputs, hidden), nn.Tanh(), nn.Linear(hidden, outputs))


def bernoulli_log_likelihood(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x | z) summed over pixels, for decoder logits of shape [..., D]."""
    return -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(
        -1
    )


class GaussianVAE(nn.Module):
    """MLP encoder and decoder, N(0, I) prior, Bernoulli pixels; latents z =
    ops.gaussian_rsample(mu, logvar, K)."""

    def __init__(self, pixels: int, latents: int = 8, hidden: int = 128):
        super().__init__()
        self.encoder = _mlp(pixels, hidden, 2 * latents)
        self.decoder = _mlp(latents, hidden, pixels)

    def log_weights(self, x: torch.Tensor, ops, num_samples: int) -> torch.Tensor:
        """log p(x, z_k) - log q(z_k | x) for K samples per image: [K, B]."""
        mu, logvar = self.encoder(x).chunk(2, dim=-1)
        z = ops.gaussian_rsample(mu, logvar, num_samples)  # [K, B, L]
        log_px = bernoulli_log_likelihood(self.decoder(z), x)
        log_2pi = math.log(2 * math.pi)
        log_pz = -0.5 * (z.square() + log_2pi).sum(-1)
        log_qz = -0.5 * ((z - mu).square() * torch.exp(-logvar) + logvar + log_2pi).sum(-1)
        return log_px + log_pz - log_qz

    def objective(self, x: torch.Tensor, ops, estimator: str = "pathwise", num_samples: int = 1):
        """The ELBO per image (maximized in training)."""
        return self.log_weights(x, ops, num_samples).mean(0)

    forward = objective  # what DistributedDataParallel calls

    def encoder_parameters(self):
        return self.encoder.parameters()

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, ops, num_samples: int) -> dict[str, float]:
        log_w = self.log_weights(x, ops, num_samples)
        iwae = torch.logsumexp(log_w, 0) - math.log(num_samples)
        return {"test_nelbo": -log_w.mean().item(), "test_iwae_nll": -iwae.mean().item()}


class DiscreteVAE(nn.Module):
    """20 categorical latents of 10 classes (Jang et al. 2017), uniform prior, Bernoulli pixels,
    trained with one of DISCRETE_ESTIMATORS. REBAR's eta, and RELAX's control variate
    eta f(relaxed z) + r(relaxed z) (Grathwohl et al.'s choice for VAEs, r a small MLP), exist
    for those estimators only and are trained on the estimator's variance in the same step."""

    def __init__(
        self,
        pixels: int,
        latents: int = 20,
        classes: int = 10,
        hidden: int = 128,
        estimator: str | None = None,
    ):
        super().__init__()
        self.latents, self.classes = latents, classes
        self.encoder = _mlp(pixels, hidden, latents * classes)
        self.decoder = _mlp(latents * classes, hidden, pixels)
        if estimator in ("rebar", "relax"):
            self.eta = nn.Parameter(torch.tensor(1.0))
        if estimator == "relax":
            self.residual = _mlp(latents * classes, hidden // 4, 1)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x).view(*x.shape[:-1], self.latents, self.classes)

    def kl_to_prior(self, logits: torch.Tensor) -> torch.Tensor:
        """KL(q(z | x) || uniform), analytic, summed over latents: [B]."""
        log_q = torch.log_softmax(logits, -1)
        return (log_q.exp() * (log_q + math.log(self.classes))).sum((-1, -2))

    def _one_hot_log_likelihood(self, index: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        z = F.one_hot(index, self.classes).to(x.dtype).flatten(-2)  # [K, B, latents * classes]
        return bernoulli_log_likelihood(self.decoder(z), x)  # [K, B]

    def objective(
        self, x: torch.Tensor, ops, estimator: str, num_samples: int = 8, tau: float = 1.0
    ) -> torch.Tensor:
        """Per image: the ELBO (relaxations, RLOO, REINFORCE) or VIMCO's K-sample bound, whose
        gradient is the estimator's."""
        logits = self.logits(x)
        if estimator in ("st_gumbel", "gumbel_softmax"):
            z = ops.gumbel_softmax(logits, tau=tau, hard=estimator == "st_gumbel")
            log_px = bernoulli_log_likelihood(self.decoder(z.flatten(-2)), x)
            return log_px - self.kl_to_prior(logits)
        if estimator in ("rebar", "relax"):
            return self._control_variate_objective(x, logits, ops, estimator, num_samples, 0.5)
        index, log_q = ops.categorical_sample(logits, num_samples)  # [K, B, latents]
        log_q = log_q.sum(-1)  # [K, B]
        log_px = self._one_hot_log_likelihood(index, x)
        if estimator == "rloo":
            return ops.score_function_loo(log_px, log_q, 0) - self.kl_to_prior(logits)
        if estimator == "reinforce":  # no baseline: d log q weighted by f itself
            score = (log_px.detach() * (log_q - log_q.detach())).mean(0)
            return log_px.mean(0) + score - self.kl_to_prior(logits)
        if estimator == "vimco":
            log_prior = -self.latents * math.log(self.classes)
            return ops.vimco(log_px + log_prior - log_q, log_q, 0)
        raise ValueError(f"unknown estimator {estimator!r}; choose from {DISCRETE_ESTIMATORS}")

    def _control_variate_objective(self, x, logits, ops, estimator, num_samples, tau):
        """The mean over K samples per image (each its own estimator, as RLOO's and REINFORCE's
        K) of the ELBO's value, REBAR's or RELAX's gradient for the encoder, d log p(x | b) for
        the decoder, and (through variance_loss, zero in value) the variance-minimizing update
        for eta and the residual."""
        logits = logits.expand(num_samples, *logits.shape)  # [K, B, latents, classes]

        def f(b):  # log p(x | b) for one-hot or relaxed latents: [K, B]
            return bernoulli_log_likelihood(self.decoder(b.flatten(-2)), x)

        if estimator == "rebar":
            estimate = ops.rebar(f, logits, tau, self.eta, categorical=True)
            tuned = [self.eta]
        else:

            def control_variate(z):
                return self.eta * f(z) + self.residual(z.flatten(-2)).squeeze(-1)

            estimate = ops.relax(f, logits, control_variate, tau, categorical=True)
            tuned = [self.eta, *self.residual.parameters()]
        estimate = estimate.mean(0)
        variance_term = ops.variance_loss(estimate, logits, tuned)
        return estimate - self.kl_to_prior(logits[0]) - variance_term

    forward = objective  # what DistributedDataParallel calls

    def encoder_parameters(self):
        return self.encoder.parameters()

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, ops, num_samples: int) -> dict[str, float]:
        """Negative ELBO with exact categorical samples (whatever the training estimator)."""
        logits = self.logits(x)
        index, _ = ops.categorical_sample(logits, num_samples)
        log_px = self._one_hot_log_likelihood(index, x).mean(0)
        return {"test_nelbo": -(log_px - self.kl_to_prior(logits)).mean().item()}

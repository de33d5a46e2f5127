"""gradext.distributions inside Pyro (skipped without pyro-ppl): a gradext Gamma as the guide of
a conjugate Gamma-Poisson model trains under Trace_ELBO, TraceGraph_ELBO and JitTrace_ELBO to the
analytic posterior."""

from __future__ import annotations

import pytest
import torch

from gradext import distributions as D

pyro = pytest.importorskip("pyro")
dist = pytest.importorskip("pyro.distributions")
infer = pytest.importorskip("pyro.infer")

COUNTS = torch.tensor([3.0, 5.0, 4.0, 6.0, 2.0, 5.0, 4.0, 3.0])
PRIOR = (2.0, 1.0)  # Gamma(concentration, rate) on the Poisson rate


def model():
    rate = pyro.sample("rate", dist.Gamma(*PRIOR))
    with pyro.plate("data", COUNTS.shape[0]):
        pyro.sample("obs", dist.Poisson(rate), obs=COUNTS)


def guide():
    log_a = pyro.param("log_a", torch.tensor(1.0))
    log_b = pyro.param("log_b", torch.tensor(0.0))
    pyro.sample("rate", D.Gamma(log_a.exp(), log_b.exp()))


def test_a_gradext_distribution_is_a_pyro_site():
    assert isinstance(D.Gamma(1.0, 1.0), dist.torch_distribution.TorchDistributionMixin)
    trace = pyro.poutine.trace(guide).get_trace()
    assert isinstance(trace.nodes["rate"]["fn"], D.Gamma)
    independent = D.Dirichlet(torch.ones(4, 3)).to_event(1)
    assert independent.event_shape == (4, 3)


@pytest.mark.parametrize("elbo", ["Trace_ELBO", "TraceGraph_ELBO", "JitTrace_ELBO"])
def test_svi_reaches_the_conjugate_posterior(elbo):
    """Posterior Gamma(2 + sum x, 1 + n): the trained guide's mean within 3% of (2 + 32) / 9
    after 2000 steps of Adam with a decaying step, 8 particles per step (the Monte Carlo ELBO
    gradient is the fused implicit gradient; Pyro's own Gamma guide reaches 3.74 this way, the
    gradext one 3.79)."""
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    optimizer = pyro.optim.ClippedAdam({"lr": 0.05, "lrd": 0.999})
    loss = getattr(infer, elbo)(num_particles=8, vectorize_particles=True, max_plate_nesting=1)
    svi = infer.SVI(model, guide, optimizer, loss)
    for _ in range(2000):
        svi.step()
    a = pyro.param("log_a").exp().item()
    b = pyro.param("log_b").exp().item()
    exact_mean = (PRIOR[0] + COUNTS.sum().item()) / (PRIOR[1] + len(COUNTS))
    assert abs(a / b - exact_mean) < 0.03 * exact_mean, (a, b, exact_mean)


def _vae_data():
    """Binary 24-pixel images from a fixed 2-factor generative model: 400 to train on, 200 to
    test (the test ELBO)."""
    g = torch.Generator().manual_seed(123)
    weights = 3 * torch.randn(2, 24, generator=g)
    z = torch.randn(600, 2, generator=g)
    x = torch.bernoulli(torch.sigmoid(z @ weights), generator=g)
    return x[:400], x[400:]


def _train_vae(normal_class, seed, steps=200):
    """A Pyro VAE (2-d Gaussian latent, one-hidden-layer encoder and decoder) whose guide samples
    z from normal_class(loc, scale).to_event(1); returns the test negative ELBO per image (64
    particles) before and after training."""
    from torch import nn

    train, test = _vae_data()
    pyro.clear_param_store()
    pyro.set_rng_seed(seed)
    encoder = nn.Sequential(nn.Linear(24, 32), nn.Tanh(), nn.Linear(32, 4))
    decoder = nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 24))

    def model(x):
        pyro.module("decoder", decoder)
        with pyro.plate("images", x.shape[0]):
            z = pyro.sample("z", dist.Normal(torch.zeros(2), torch.ones(2)).to_event(1))
            pyro.sample("x", dist.Bernoulli(logits=decoder(z)).to_event(1), obs=x)

    def guide(x):
        pyro.module("encoder", encoder)
        h = encoder(x)
        with pyro.plate("images", x.shape[0]):
            pyro.sample("z", normal_class(h[:, :2], nn.functional.softplus(h[:, 2:])).to_event(1))

    svi = infer.SVI(
        model, guide, pyro.optim.Adam({"lr": 0.02}), infer.Trace_ELBO(max_plate_nesting=1)
    )
    evaluate = infer.Trace_ELBO(num_particles=64, vectorize_particles=True, max_plate_nesting=1)
    before = evaluate.loss(model, guide, test) / len(test)
    for _ in range(steps):
        svi.step(train)
    return before, evaluate.loss(model, guide, test) / len(test)


def test_a_vae_guide_trains_to_torchs_test_elbo():
    """The same Pyro VAE with gradext's Normal and with Pyro's (torch's) Normal in the guide, 4
    seeds each: both improve the test negative ELBO by more than 1 nat per image (17.2 to about
    10.95), and their final values agree by Welch's t-test (p > 0.01)."""
    stats = pytest.importorskip("scipy.stats")
    ours, theirs = [], []
    for seed in range(4):
        for normal_class, results in ((D.Normal, ours), (dist.Normal, theirs)):
            before, after = _train_vae(normal_class, seed)
            assert before - after > 1.0, (normal_class, seed, before, after)
            results.append(after)
    p = stats.ttest_ind(ours, theirs, equal_var=False).pvalue
    assert p > 0.01, (ours, theirs)

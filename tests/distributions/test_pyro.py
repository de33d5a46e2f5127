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

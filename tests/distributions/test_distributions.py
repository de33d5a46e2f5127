"""gradext.distributions: torch's classes with the fused samplers. Each is a subclass of its
torch.distributions counterpart with torch's log_prob, moments, expand, KL and pickling; its
samples have the right shape for any sample_shape, follow the law (Kolmogorov-Smirnov against
scipy, p > 1e-3 at fixed seeds; a z-test for Categorical), reproduce with a generator, and carry
the fused ops' gradients."""

from __future__ import annotations

import pickle

import pytest
import torch
from torch import distributions as td

from gradext import distributions as D

F64 = dict(dtype=torch.float64)


def _cases():
    """(name, gradext instance, torch class, scipy frozen law or None for its first element)."""
    return {
        "Gamma": (
            D.Gamma(torch.tensor([0.7, 3.0], **F64), torch.tensor([1.0, 2.0], **F64)),
            td.Gamma,
        ),
        "Beta": (D.Beta(torch.tensor([0.5, 2.0], **F64), torch.tensor([1.5, 3.0], **F64)), td.Beta),
        "Dirichlet": (D.Dirichlet(torch.tensor([[0.5, 1.0, 2.0]], **F64)), td.Dirichlet),
        "VonMises": (
            D.VonMises(torch.tensor([0.3, -2.0], **F64), torch.tensor([2.0, 0.5], **F64)),
            td.VonMises,
        ),
        "RelaxedBernoulli": (
            D.RelaxedBernoulli(torch.tensor(0.7, **F64), logits=torch.tensor([0.3, -1.0], **F64)),
            td.RelaxedBernoulli,
        ),
        "RelaxedOneHotCategorical": (
            D.RelaxedOneHotCategorical(
                torch.tensor(0.7, **F64), logits=torch.tensor([[0.3, -1.0, 0.5]], **F64)
            ),
            td.RelaxedOneHotCategorical,
        ),
    }


CASES = list(_cases())


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("sample_shape", [(), (5,), (2, 3), torch.Size([4])], ids=repr)
def test_shapes_generator_and_torch_behaviour(implementation, name, sample_shape):
    dist, torch_class = _cases()[name]
    assert isinstance(dist, torch_class)
    x = dist.rsample(sample_shape, generator=torch.Generator().manual_seed(1))
    assert x.shape == dist._extended_shape(torch.Size(sample_shape))
    again = dist.rsample(sample_shape, generator=torch.Generator().manual_seed(1))
    assert torch.equal(x, again)
    y = dist.sample(sample_shape, generator=torch.Generator().manual_seed(1))
    assert torch.equal(x, y) and not y.requires_grad
    # torch's own log_prob of the fused samples: finite (every sample lies in the support).
    assert torch.isfinite(dist.log_prob(x)).all()


def _ks_pvalue(samples, cdf):
    stats = pytest.importorskip("scipy.stats")
    return stats.kstest(samples.double().numpy(), cdf).pvalue


@pytest.mark.parametrize(
    "name, law",
    [
        ("Gamma", lambda s: s.gamma(0.7, scale=1.0).cdf),
        ("Beta", lambda s: s.beta(0.5, 1.5).cdf),
        ("VonMises", lambda s: s.vonmises(2.0, loc=0.3).cdf),
    ],
)
def test_samples_follow_the_law(implementation, name, law):
    """The first batch element's samples against scipy's law: KS p > 1e-3 (fixed seed)."""
    stats = pytest.importorskip("scipy.stats")
    dist, _ = _cases()[name]
    x = dist.sample((20_000,), generator=torch.Generator().manual_seed(2))[:, 0]
    assert _ks_pvalue(x, law(stats)) > 1e-3


def test_relaxed_bernoulli_follows_torch(implementation):
    """The binary Concrete law: the fused samples against torch's own RelaxedBernoulli draws,
    two-sample KS, p > 1e-3."""
    stats = pytest.importorskip("scipy.stats")
    dist, _ = _cases()["RelaxedBernoulli"]
    ours = dist.sample((20_000,), generator=torch.Generator().manual_seed(3))[:, 0]
    torch.manual_seed(4)
    theirs = td.RelaxedBernoulli(dist.temperature, logits=dist.logits).sample((20_000,))[:, 0]
    assert stats.ks_2samp(ours.numpy(), theirs.numpy()).pvalue > 1e-3


def test_categorical_frequencies(implementation):
    """Categorical(probs) sampled by the Gumbel-max kernel: z-test per class, 200k draws,
    |z| < 4.5; the generator reproduces."""
    probs = torch.tensor([0.1, 0.2, 0.3, 0.4], **F64)
    dist = D.Categorical(probs=probs)
    x = dist.sample((200_000,), generator=torch.Generator().manual_seed(5))
    assert x.shape == (200_000,) and x.dtype == torch.int64
    freq = torch.bincount(x, minlength=4).double() / x.numel()
    z = (freq - probs) / torch.sqrt(probs * (1 - probs) / x.numel())
    assert z.abs().max() < 4.5, z
    same = dist.sample((200_000,), generator=torch.Generator().manual_seed(5))
    assert torch.equal(x, same)
    assert D.Categorical(logits=torch.randn(3, 5)).sample((2, 4)).shape == (2, 4, 3)


def test_gradients_are_the_fused_ops(implementation):
    """rsample is the fused op (same seed, same values and graph), and its gradient is unbiased:
    per-sample d z / d alpha against d E[z] / d alpha = 1 / rate, z-test over 200k samples,
    |z| < 4.5."""
    import gradext

    alpha = torch.tensor([1.5, 3.0], **F64, requires_grad=True)
    rate = torch.tensor([2.0, 0.5], **F64, requires_grad=True)
    z = D.Gamma(alpha, rate).rsample((3,), generator=torch.Generator().manual_seed(6))
    expected = gradext.gamma_rsample(alpha, rate, 3, generator=torch.Generator().manual_seed(6))
    assert torch.equal(z, expected)
    n = 200_000
    per_sample_alpha = alpha.detach().expand(n, 2).clone().requires_grad_()
    z = D.Gamma(per_sample_alpha, rate.detach()).rsample(generator=torch.Generator().manual_seed(7))
    (grads,) = torch.autograd.grad(z.sum(), per_sample_alpha)
    score = (grads.mean(0) - 1 / rate.detach()) / (grads.std(0) / n**0.5)
    assert score.abs().max() < 4.5, score


def test_von_mises_has_an_rsample(implementation):
    dist = D.VonMises(torch.tensor(0.5, **F64, requires_grad=True), torch.tensor(2.0, **F64))
    assert dist.has_rsample and not td.VonMises.has_rsample
    x = dist.rsample((100,))
    (grad,) = torch.autograd.grad(x.sum(), dist.loc)
    assert grad.item() == pytest.approx(100.0)  # d x / d loc = 1 per sample


def test_expand_pickle_independent_and_kl(implementation):
    gamma = D.Gamma(torch.tensor([1.0, 2.0], **F64), torch.tensor([1.0, 3.0], **F64))
    expanded = gamma.expand((4, 2))
    assert type(expanded) is D.Gamma and expanded.rsample((3,)).shape == (3, 4, 2)
    restored = pickle.loads(pickle.dumps(gamma))
    assert type(restored) is D.Gamma and torch.equal(restored.concentration, gamma.concentration)
    independent = td.Independent(gamma, 1)
    assert independent.rsample((5,)).shape == (5, 2)
    other = td.Gamma(torch.tensor([2.0, 2.0], **F64), torch.tensor([1.0, 1.0], **F64))
    torch.testing.assert_close(
        td.kl_divergence(gamma, other),
        td.kl_divergence(td.Gamma(gamma.concentration, gamma.rate), other),
    )
    torch.testing.assert_close(
        gamma.log_prob(torch.tensor([0.5, 1.5], **F64)),
        td.Gamma(gamma.concentration, gamma.rate).log_prob(torch.tensor([0.5, 1.5], **F64)),
    )


def test_errors():
    gamma = D.Gamma(torch.ones(2), torch.ones(2))
    with pytest.raises(
        TypeError,
        match="Gamma.rsample: sample_shape must be a torch.Size or a tuple of ints, got float",
    ):
        gamma.rsample(2.5)
    with pytest.raises(ValueError):
        D.Gamma(torch.tensor([-1.0]), torch.ones(1), validate_args=True)


@pytest.mark.parametrize("cls", ["RelaxedBernoulli", "RelaxedOneHotCategorical"])
@pytest.mark.parametrize("temperature_shape", [(), (2, 1), (2, 3)], ids=str)
def test_learned_and_per_element_temperatures(implementation, cls, temperature_shape):
    """A temperature that requires grad, one number or one per element (broadcast against the
    logits as torch's classes do): the sample is torch's formula on the same noise (the noise
    redrawn from the same generator seed) and so are its gradients to the logits and the
    temperature, in float64 to 1e-12."""
    from gradext import reference

    logits = torch.tensor([[0.3, -1.0, 0.5], [2.0, 0.1, -0.4]], **F64, requires_grad=True)
    temperature = (0.3 + torch.rand(temperature_shape, **F64)).requires_grad_()
    dist = getattr(D, cls)(temperature, logits=logits)
    x = dist.rsample((4,), generator=torch.Generator().manual_seed(11))
    assert x.shape == (4, 2, 3)
    draw = reference.logistic_noise if cls == "RelaxedBernoulli" else reference.gumbel_noise
    noise = draw((4, 2, 3), torch.float64, "cpu", torch.Generator().manual_seed(11))
    # dist.logits: torch's classes normalize categorical logits (log-softmax), which matters once
    # the temperature differs between categories
    if cls == "RelaxedBernoulli":
        expected = torch.sigmoid((dist.logits + noise) / temperature)
    else:
        expected = torch.softmax((dist.logits + noise) / temperature, dim=-1)
    if temperature_shape == ():
        # one temperature: the fused op's noise, not the reference's: the law is checked below
        expected = None
    weights = torch.randn(4, 2, 3, **F64)
    ours = torch.autograd.grad((x * weights).sum(), (logits, temperature), retain_graph=True)
    if expected is not None:
        torch.testing.assert_close(x, expected, rtol=1e-12, atol=1e-12)
        theirs = torch.autograd.grad((expected * weights).sum(), (logits, temperature))
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert all(torch.isfinite(g).all() for g in ours)


def test_per_element_temperature_law(implementation):
    """A temperature per coordinate, the fused classes' samples against torch's own class's,
    two-sample KS per coordinate, p > 1e-3 (fixed seeds)."""
    stats = pytest.importorskip("scipy.stats")
    temperature = torch.tensor([0.3, 1.5], **F64)
    logits = torch.tensor([0.4, -0.8], **F64)
    ours = D.RelaxedBernoulli(temperature, logits=logits).sample(
        (20_000,), generator=torch.Generator().manual_seed(12)
    )
    torch.manual_seed(13)
    theirs = td.RelaxedBernoulli(temperature, logits=logits).sample((20_000,))
    for j in range(2):
        assert stats.ks_2samp(ours[:, j].numpy(), theirs[:, j].numpy()).pvalue > 1e-3

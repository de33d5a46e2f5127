"""The checks of PyTorch's own test suite for torch.distributions (test/distributions/
test_distributions.py: its generic tests over an EXAMPLES table, its per-class shape and sampler
tests, TestRsample, TestValidation, TestJit and the scipy comparisons) applied to the gradext
classes, written for this repository: torch's test file is not in the torch wheel and is not
vendored here. Where a check of torch's cannot hold by design, the README lists it and why
("torch.distributions classes"); the one such check is also asserted here, the other way round.

Statistical checks state their test and threshold; fixed seeds."""

from __future__ import annotations

import math

import pytest
import torch
from torch import distributions as td

from gradext import distributions as D
from helpers.paths import every_path, on_path

stats = pytest.importorskip("scipy.stats")


def _examples():
    """name -> list of constructor kwargs, as torch's EXAMPLES table: broadcasting parameters,
    python floats, one-element and batched tensors, parameters that require grad."""

    def positive(*shape):
        return torch.randn(*shape).exp().requires_grad_()

    def real(*shape):
        return torch.randn(*shape, requires_grad=True)

    return {
        "Normal": [
            {"loc": real(5, 5), "scale": positive(5, 5)},
            {"loc": real(1), "scale": positive(1)},
            {"loc": torch.tensor([1.0, 0.0], requires_grad=True), "scale": 1e-5 + 0 * real(2)},
            {"loc": 0.0, "scale": 1.0},
            {"loc": real(3, 1), "scale": positive(4)},
        ],
        "Gamma": [
            {"concentration": positive(2, 3), "rate": positive(2, 3)},
            {"concentration": positive(1), "rate": positive(1)},
        ],
        "Beta": [
            {"concentration1": positive(2, 3), "concentration0": positive(2, 3)},
            {"concentration1": positive(4), "concentration0": positive(4)},
        ],
        "Dirichlet": [{"concentration": positive(2, 3)}, {"concentration": positive(4)}],
        "VonMises": [
            {"loc": torch.tensor(1.0, requires_grad=True), "concentration": positive(())},
            {"loc": real(2, 3), "concentration": positive(2, 3)},
        ],
        "RelaxedBernoulli": [
            {"temperature": torch.tensor([0.5]), "probs": torch.tensor([0.7, 0.2, 0.4])},
            {"temperature": torch.tensor([2.0]), "probs": torch.tensor([0.3])},
            {"temperature": torch.tensor([7.2]), "logits": torch.tensor([-2.0, 2.0, 0.0])},
        ],
        "RelaxedOneHotCategorical": [
            {"temperature": torch.tensor([0.5]), "probs": torch.tensor([[0.1, 0.2, 0.7]])},
            {"temperature": torch.tensor([2.0]), "probs": torch.tensor([[1.0, 0.0]])},
            {"temperature": torch.tensor([7.2]), "logits": torch.tensor([[-2.0, 2.0], [1.0, 5.0]])},
        ],
        "Categorical": [
            {"probs": torch.tensor([[0.1, 0.2, 0.3], [0.5, 0.3, 0.2]], requires_grad=True)},
            {"probs": torch.tensor([[1.0, 0.0], [0.0, 1.0]])},
            {"logits": torch.tensor([[0.0, 0.0], [0.0, 0.0]], requires_grad=True)},
        ],
    }


def _bad_examples():
    """name -> kwargs that validate_args=True must refuse with a ValueError (torch's
    BAD_EXAMPLES)."""
    return {
        "Normal": [{"loc": torch.tensor([0.0]), "scale": torch.tensor([-1e-5])}],
        "Gamma": [{"concentration": torch.tensor([0.0]), "rate": torch.tensor([1.0])}],
        "Beta": [{"concentration1": torch.tensor([-1.0]), "concentration0": torch.tensor([1.0])}],
        "Dirichlet": [{"concentration": torch.tensor([0.0, 1.0])}],
        "VonMises": [{"loc": torch.tensor([0.0]), "concentration": torch.tensor([-1.0])}],
        "RelaxedBernoulli": [{"temperature": torch.tensor([1.0]), "probs": torch.tensor([1.5])}],
        "RelaxedOneHotCategorical": [
            {"temperature": torch.tensor([1.0]), "probs": torch.tensor([[-0.1, 1.1]])}
        ],
        "Categorical": [{"probs": torch.tensor([[-0.1, 1.1]])}],
    }


CASES = [(name, i) for name, params in _examples().items() for i in range(len(params))]


def _dist(name, index, **extra):
    torch.manual_seed(index)
    return getattr(D, name)(**_examples()[name][index], **extra)


@pytest.mark.parametrize("name, index", CASES)
def test_the_class_is_torchs_with_its_constraints(name, index):
    dist = _dist(name, index)
    base = getattr(td, name)
    assert isinstance(dist, base) and type(dist).__mro__.index(base) > 0
    assert type(dist).arg_constraints is base.arg_constraints
    assert type(dist).support is base.support
    assert dist.has_rsample == (name != "Categorical")


@pytest.mark.parametrize("name, index", CASES)
@pytest.mark.parametrize("sample_shape", [(), (2,), (2, 3)], ids=str)
def test_samples_have_the_extended_shape_and_lie_in_the_support(name, index, sample_shape):
    """torch's test_support_attributes and the per-class *_shape tests."""
    dist = _dist(name, index)
    x = dist.sample(sample_shape)
    assert x.shape == dist._extended_shape(torch.Size(sample_shape))
    assert dist.support.check(x).all()
    assert not x.requires_grad
    if dist.has_rsample:
        assert dist.rsample(sample_shape).shape == x.shape


@pytest.mark.parametrize("name, index", [c for c in CASES if c[0] != "Categorical"])
def test_rsample_gradients_reach_every_parameter(name, index):
    """torch's *_shape tests check rsample().requires_grad and that backward runs: here the
    gradient of every parameter that requires grad exists, has its shape and is finite."""
    params = _examples()[name][index]
    torch.manual_seed(index)
    dist = getattr(D, name)(**params)
    leaves = [v for v in params.values() if torch.is_tensor(v) and v.requires_grad]
    x = dist.rsample((3,))
    assert x.requires_grad == bool(leaves)
    if not leaves:
        return
    grads = torch.autograd.grad(x.sum(), leaves)
    for leaf, g in zip(leaves, grads):
        assert g.shape == leaf.shape and torch.isfinite(g).all()


@pytest.mark.parametrize("name, index", CASES)
@pytest.mark.parametrize("sample_shape", [(), (2,), (2, 3)], ids=str)
def test_expand(name, index, sample_shape):
    """torch's test_distribution_expand: the expanded distribution is the same class (so it keeps
    the fused sampler), its samples have the expanded shape, and log_prob of them equals the
    original's broadcast."""
    dist = _dist(name, index)
    new_batch = torch.Size((2, *dist.batch_shape))
    expanded = dist.expand(new_batch)
    assert type(expanded) is type(dist)
    x = expanded.sample(sample_shape)
    assert x.shape == torch.Size(sample_shape) + new_batch + dist.event_shape
    torch.testing.assert_close(expanded.log_prob(x), dist.log_prob(x))
    assert expanded.batch_shape == new_batch


@pytest.mark.parametrize("name, index", CASES)
def test_valid_parameters_pass_validation(name, index):
    """torch's TestValidation.test_valid."""
    _dist(name, index, validate_args=True)


@pytest.mark.parametrize(
    "name, kwargs", [(n, k) for n, ks in _bad_examples().items() for k in ks], ids=str
)
def test_invalid_parameters_raise(name, kwargs):
    """torch's TestValidation.test_invalid: a ValueError naming the parameter."""
    with pytest.raises(ValueError, match="Expected parameter"):
        getattr(D, name)(**kwargs, validate_args=True)


@pytest.mark.parametrize("name", ["Normal", "Gamma", "Beta", "VonMises", "Dirichlet"])
def test_log_prob_moments_and_entropy_against_scipy(name):
    """torch's TestAgainstScipy (log_prob of the fused samples, mean, variance, entropy)."""
    torch.manual_seed(3)
    F64 = dict(dtype=torch.float64)
    if name == "Normal":
        loc, scale = torch.randn(5, **F64), torch.rand(5, **F64) + 0.2
        dist, law = D.Normal(loc, scale), stats.norm(loc.numpy(), scale.numpy())
    elif name == "Gamma":
        a, r = torch.rand(5, **F64) + 0.3, torch.rand(5, **F64) + 0.5
        dist, law = D.Gamma(a, r), stats.gamma(a.numpy(), scale=1 / r.numpy())
    elif name == "Beta":
        a, b = torch.rand(5, **F64) + 0.3, torch.rand(5, **F64) + 0.3
        dist, law = D.Beta(a, b), stats.beta(a.numpy(), b.numpy())
    elif name == "VonMises":
        loc, k = torch.rand(5, **F64) * 2 - 1, torch.rand(5, **F64) * 3 + 0.1
        dist, law = D.VonMises(loc, k), stats.vonmises(k.numpy(), loc=loc.numpy())
    else:
        alpha = torch.rand(4, **F64) + 0.3
        dist = D.Dirichlet(alpha)
        x = dist.sample((6,))
        want = [stats.dirichlet.logpdf(row.numpy(), alpha.numpy()) for row in x]
        torch.testing.assert_close(dist.log_prob(x), torch.tensor(want, **F64))
        torch.testing.assert_close(dist.entropy(), torch.tensor(stats.dirichlet.entropy(alpha)))
        return
    x = dist.sample((6,))
    torch.testing.assert_close(dist.log_prob(x), torch.from_numpy(law.logpdf(x.numpy())))
    if name != "VonMises":  # torch's VonMises mean is the location, scipy's circular mean
        torch.testing.assert_close(dist.mean, torch.from_numpy(law.mean()))
        torch.testing.assert_close(dist.variance, torch.from_numpy(law.var()))
    if name != "VonMises":  # torch's VonMises has no entropy before 2.4's
        torch.testing.assert_close(dist.entropy(), torch.from_numpy(law.entropy()))


@pytest.mark.parametrize(
    "name, law",
    [
        ("Normal", lambda: (D.Normal(0.3, 2.0), stats.norm(0.3, 2.0).cdf)),
        ("Gamma", lambda: (D.Gamma(0.5, 2.0), stats.gamma(0.5, scale=0.5).cdf)),
        ("Beta", lambda: (D.Beta(0.7, 3.0), stats.beta(0.7, 3.0).cdf)),
        ("VonMises", lambda: (D.VonMises(1.0, 4.0), stats.vonmises(4.0, loc=1.0).cdf)),
    ],
)
def test_samplers_against_scipy(name, law):
    """torch's *_sample tests (_check_sampler_distribution): Kolmogorov-Smirnov of 20,000 fused
    samples against scipy's CDF, p > 1e-3 at a fixed seed."""
    dist, cdf = law()
    torch.manual_seed(11)
    x = dist.sample((20_000,))
    assert stats.kstest(x.double().numpy(), cdf).pvalue > 1e-3


def _per_sample_gradients(dist_of, alphas, n):
    """x = n samples of dist_of(alphas expanded to [n, len(alphas)]) and each sample's
    d x / d alpha, [n, len(alphas)]."""
    x = dist_of(alphas.expand(n, -1)).rsample()
    per_sample = torch.stack(
        [torch.autograd.grad(x[i].sum(), alphas, retain_graph=True)[0] for i in range(n)]
    )
    return x.detach(), per_sample


def _cdf_transport(cdf, pdf, alphas, x):
    """-(dF/dalpha) / p(x) at each sample: the implicit gradient of the CDF transport, dF/dalpha
    by central differences of scipy's CDF (torch's TestRsample does the same)."""
    a, xs = alphas.detach().numpy(), x.numpy()
    h = 1e-6 * a
    dcdf = (cdf(xs, a + h) - cdf(xs, a - h)) / (2 * h)
    return torch.from_numpy(-dcdf / pdf(xs, a)), torch.from_numpy(pdf(xs, a) > 1e-3)


@pytest.mark.parametrize("name", ["Gamma", "VonMises"])
def test_rsample_gradient_is_the_cdf_transport(name):
    """torch's TestRsample.test_gamma (and the same for VonMises, whose rsample torch lacks): at
    each sample the gradient is -(dF/dalpha) / p(x); relative error below 5e-4 (torch's
    threshold) where p(x) > 1e-3 (central differences lose digits in the tails)."""
    torch.manual_seed(1)
    alphas = torch.tensor([0.1, 0.5, 1.0, 4.0, 20.0], dtype=torch.float64, requires_grad=True)
    if name == "Gamma":
        x, grads = _per_sample_gradients(lambda a: D.Gamma(a, torch.ones(())), alphas, 40)
        expected, keep = _cdf_transport(stats.gamma.cdf, stats.gamma.pdf, alphas, x)
    else:
        x, grads = _per_sample_gradients(lambda a: D.VonMises(torch.zeros(()), a), alphas, 40)
        expected, keep = _cdf_transport(
            lambda x, k: stats.vonmises.cdf(x, k), lambda x, k: stats.vonmises.pdf(x, k), alphas, x
        )
    rel = ((grads - expected).abs() / expected.abs().clamp_min(1e-12))[keep]
    assert rel.max() < 5e-4, rel.max()


def test_beta_gradient_is_unbiased_but_not_the_cdf_transport():
    """torch's TestRsample.test_beta_wrt_alpha checks each sample's gradient against the
    marginal CDF's transport, -(dF/dalpha) / p(x). gradext's Beta differentiates through the two
    Gamma draws it normalizes (x = g1 / (g1 + g0)): another unbiased pathwise gradient, so that
    check cannot hold by design (README). Here: it differs per sample, and its mean over 100,000
    samples matches d E[x] / d alpha = beta / (alpha + beta)^2 (z-test, |z| < 4.5)."""
    torch.manual_seed(2)
    alphas = torch.tensor([0.5, 2.0], dtype=torch.float64, requires_grad=True)
    beta = torch.full((), 2.0, dtype=torch.float64)
    x, grads = _per_sample_gradients(lambda a: D.Beta(a, beta), alphas, 40)
    expected, _ = _cdf_transport(
        lambda x, a: stats.beta.cdf(x, a, 2.0), lambda x, a: stats.beta.pdf(x, a, 2.0), alphas, x
    )
    assert ((grads - expected).abs() / expected.abs()).max() > 1e-2
    n = 100_000
    many = alphas.detach().expand(n, -1).clone().requires_grad_()
    (g,) = torch.autograd.grad(D.Beta(many, beta).rsample().sum(), many)
    want = 2.0 / (alphas.detach() + 2.0) ** 2
    z = (g.mean(0) - want) / (g.std(0) / n**0.5)
    assert z.abs().max() < 4.5, z


def test_normal_rsample_gradient_is_its_own_noise():
    """torch's test_normal checks scale.grad == eps with eps drawn by torch.normal after restoring
    the RNG state, which ties the class to torch.normal's algorithm. Here the same statement about
    the fused op: restoring the state reproduces the sample, and scale.grad is its own noise
    (z - loc) / scale, loc.grad is ones. torch.normal's eps is a different draw (the README)."""
    loc = torch.randn(5, 5, requires_grad=True)
    scale = torch.randn(5, 5).abs().requires_grad_()
    state = torch.get_rng_state()
    z = D.Normal(loc, scale).rsample()
    z.backward(torch.ones_like(z))
    torch.set_rng_state(state)
    again = D.Normal(loc, scale).rsample()
    assert torch.equal(z, again)
    torch.testing.assert_close(loc.grad, torch.ones_like(loc))
    torch.testing.assert_close(scale.grad, ((z - loc) / scale).detach())
    torch.set_rng_state(state)
    assert not torch.equal(torch.normal(torch.zeros(5, 5), torch.ones(5, 5)), scale.grad)


def test_normal_extreme_values_and_cdf_icdf():
    """torch's test_normal sample check at a tiny scale, and test_cdf_icdf_inverse."""
    torch.manual_seed(1)
    loc = torch.tensor([1.0, 0.0])
    scale = torch.tensor([1e-5, 1e-5])
    x = D.Normal(loc, scale).sample((1, 2))
    torch.testing.assert_close(x, torch.tensor([[[1.0, 0.0], [1.0, 0.0]]]), atol=1e-4, rtol=0)
    dist = D.Normal(torch.randn(3, 4), torch.rand(3, 4) + 0.5)
    z = dist.sample((5,))
    torch.testing.assert_close(dist.icdf(dist.cdf(z)), z, atol=2e-5, rtol=1e-5)


def _all_tensor_parameters(name, index):
    return all(torch.is_tensor(v) for v in _examples()[name][index].values())


@pytest.mark.parametrize(
    "name, index",
    [c for c in CASES if c[0] in ("Normal", "Gamma") and _all_tensor_parameters(*c)],
)
def test_jit_trace_of_rsample_and_log_prob(name, index):
    """torch's TestJit (which traces tensor parameters): rsample and log_prob trace; the traced
    rsample reproduces the eager one under the same seed, and log_prob agrees."""
    params = _examples()[name][index]
    values = [v.detach() for v in params.values()]
    cls = getattr(D, name)

    def rsample(*args):
        return cls(*args).rsample()

    def log_prob(*args):
        return cls(*args[:-1]).log_prob(args[-1])

    traced = torch.jit.trace(rsample, values, check_trace=False)
    torch.manual_seed(5)
    expected = rsample(*values)
    torch.manual_seed(5)
    assert torch.equal(traced(*values), expected)
    traced_lp = torch.jit.trace(log_prob, (*values, expected), check_trace=False)
    torch.testing.assert_close(traced_lp(*values, expected), log_prob(*values, expected))


def test_independent_and_transformed_distributions_use_the_fused_sampler():
    """Inside torch's Independent and TransformedDistribution (LogNormal as exp of a Normal):
    shapes, log_prob, and the samples are the fused op's (same seed, same values)."""
    loc, scale = torch.randn(4, 3), torch.rand(4, 3) + 0.5
    ind = td.Independent(D.Normal(loc, scale), 1)
    torch.manual_seed(2)
    x = ind.rsample((5,))
    assert x.shape == (5, 4, 3) and ind.log_prob(x).shape == (5, 4)
    torch.manual_seed(2)
    assert torch.equal(x, D.Normal(loc, scale).rsample((5,)))
    log_normal = td.TransformedDistribution(D.Normal(loc, scale), [td.ExpTransform()])
    torch.manual_seed(3)
    y = log_normal.rsample((2,))
    torch.manual_seed(3)
    torch.testing.assert_close(y, D.Normal(loc, scale).rsample((2,)).exp())
    torch.testing.assert_close(log_normal.log_prob(y), td.LogNormal(loc, scale).log_prob(y))


def test_kl_uses_torchs_registrations():
    p = D.Normal(torch.zeros(3), torch.ones(3))
    q = D.Normal(torch.ones(3), 2 * torch.ones(3))
    want = math.log(2) + (1 + 1) / 8 - 0.5
    torch.testing.assert_close(td.kl_divergence(p, q), torch.full((3,), want))


@pytest.mark.parametrize("name", ["RelaxedBernoulli", "RelaxedOneHotCategorical"])
def test_a_number_temperature_samples_as_torchs(name):
    """torch's test_rounded_relaxed_bernoulli and test_argmax_relaxed_categorical construct the
    relaxed classes with a Python float temperature: it samples (the fused path), and at
    temperature 1e10 every sample is the uniform point (0.5, or 1 / K per category)."""
    probs = torch.tensor([0.1, 0.9]) if name == "RelaxedOneHotCategorical" else torch.tensor(0.2)
    dist = getattr(D, name)(1e10, probs)
    x = dist.rsample((4,), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(x, torch.full_like(x, 0.5))
    cold = getattr(D, name)(0.1, probs).sample((1000,), generator=torch.Generator().manual_seed(1))
    assert cold.shape == (1000, *probs.shape) and dist.support.check(cold).all()


@pytest.mark.parametrize("given", ["probs", "logits"])
def test_categorical_sample_keeps_torchs_lazy_parametrization(given):
    """torch's TestLazyLogitsInitialization: sampling does not build the parametrization the
    user did not give. From probs the kernel samples log(probs): a zero probability is never
    drawn (torch's lazy logits clamp it to log(eps))."""
    probs = torch.tensor([[0.0, 0.25, 0.75], [0.5, 0.0, 0.5]])
    dist = D.Categorical(**{given: probs if given == "probs" else probs.log()})
    x = dist.sample((20_000,), generator=torch.Generator().manual_seed(2))
    other = "logits" if given == "probs" else "probs"
    assert other not in dist.__dict__
    assert not (x == torch.tensor([0, 1])).any()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("path", every_path())
def test_tiny_concentrations_never_sample_exactly_zero_or_one(path, dtype):
    """torch's test_beta_underflow, on every path: Beta(0.01, 0.01) puts its mass within
    rounding of 0 and 1, yet no sample is exactly 0 or 1 (log_prob would be infinite), and the
    mass splits evenly: each side's fraction within 0.05 of 0.5 (50k samples: 0.05 is over 20
    standard errors, and about 40 % of float32 samples rounded to 1 before the clamp)."""
    with on_path(path) as device:
        conc = torch.tensor(1e-2, dtype=dtype, device=device)
        generator = torch.Generator(device).manual_seed(1)
        x = D.Beta(conc, conc).sample((50_000,), generator=generator)
        rows = D.Dirichlet(torch.full((3,), 1e-2, dtype=dtype, device=device)).sample(
            (10_000,), generator=generator
        )
    assert ((x > 0) & (x < 1)).all()
    assert ((rows > 0) & (rows < 1)).all()
    assert abs((x < 0.1).float().mean().item() - 0.5) < 0.05
    assert abs((x > 0.9).float().mean().item() - 0.5) < 0.05

"""REBAR and RELAX (gradext/control_variates.py): unbiasedness on the papers' toy problem
E[(b - t)^2] (t = 0.45, 0.499) and on a categorical version (z-tests against the exact
gradient, |z| < 4.5 over 100k-200k samples), REBAR with eta = 0 is REINFORCE exactly, the
surrogate's gradients for f's and the control variate's parameters, the variance gradient
against finite differences, variance reductions, and errors."""

from __future__ import annotations

import pytest
import torch

import gradext

F64 = dict(dtype=torch.float64)


def _toy(t):
    def f(b):
        return (b - t) ** 2

    return f


def _exact_bernoulli_gradient(logit, t):
    p = torch.sigmoid(torch.tensor(logit, **F64))
    return (p * (1 - p) * ((1 - t) ** 2 - t**2)).item()


def _per_sample_gradients(estimator, logit, n, seed, **kwargs):
    """The single-sample estimates of d E[f(b)] / d logit for n independent draws (one
    Bernoulli variable each, every value paired with its own draw)."""
    logits = torch.full((n,), logit, **F64, requires_grad=True)
    estimate = estimator(logits, generator=torch.Generator().manual_seed(seed), **kwargs)
    (grad,) = torch.autograd.grad(estimate.sum(), logits)
    return grad


def _z_score(samples, exact):
    return ((samples.mean() - exact) / (samples.std() / samples.numel() ** 0.5)).item()


class _LinearCV(torch.nn.Module):
    """A small control variate on the relaxed latent: c(z) = a (z - 1/2)^2 + s z + d."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Parameter(torch.tensor(0.3, **F64))
        self.s = torch.nn.Parameter(torch.tensor(-0.2, **F64))
        self.d = torch.nn.Parameter(torch.tensor(0.1, **F64))

    def forward(self, z):
        return self.a * (z - 0.5) ** 2 + self.s * z + self.d


@pytest.mark.parametrize("t", [0.45, 0.499])
@pytest.mark.parametrize("name", ["rebar", "rebar-tau0.3-eta0.6", "relax", "reinforce"])
def test_bernoulli_toy_problem_is_unbiased(implementation, t, name):
    f = _toy(t)
    cv = _LinearCV()
    estimators = {
        "rebar": lambda x, **kw: gradext.rebar(f, x, **kw),
        "rebar-tau0.3-eta0.6": lambda x, **kw: gradext.rebar(f, x, 0.3, 0.6, **kw),
        "relax": lambda x, **kw: gradext.relax(f, x, cv, 0.5, **kw),
        "reinforce": lambda x, **kw: gradext.rebar(f, x, eta=0.0, **kw),
    }
    grads = _per_sample_gradients(estimators[name], 0.4, 200_000, seed=3)
    z = _z_score(grads, _exact_bernoulli_gradient(0.4, t))
    assert abs(z) < 4.5, z


def test_a_biased_estimator_fails_the_z_test():
    """The z-test can fail: the relaxed gradient alone (the control variate's pathwise term
    without its correction) is biased on the toy problem."""
    f = _toy(0.45)
    logits = torch.full((200_000,), 0.4, **F64, requires_grad=True)
    _, soft, _ = gradext.conditional_relaxation(
        logits, 0.5, generator=torch.Generator().manual_seed(3)
    )
    (grads,) = torch.autograd.grad(f(soft).sum(), logits)
    assert abs(_z_score(grads, _exact_bernoulli_gradient(0.4, 0.45))) > 10


def test_categorical_toy_problem_is_unbiased(implementation):
    """E[sum_c (b_c - t_c)^2] over one categorical variable of 4 classes, per-coordinate
    z-tests against the exact gradient (autograd of the enumerated expectation)."""
    target = torch.tensor([0.45, 0.1, 0.3, 0.6], **F64)
    row = torch.tensor([0.5, -1.0, 1.2, 0.0], **F64)

    def f(b):
        return ((b - target) ** 2).sum(-1)

    leaf = row.clone().requires_grad_()
    values = torch.stack([f(torch.eye(4, **F64)[k]) for k in range(4)])
    (exact,) = torch.autograd.grad((torch.softmax(leaf, 0) * values).sum(), leaf)
    n = 100_000
    cv = _LinearCV()
    for name, estimator in {
        "rebar": lambda x, g: gradext.rebar(f, x, 0.5, 1.0, categorical=True, generator=g),
        "relax": lambda x, g: gradext.relax(
            f, x, lambda z: cv(z).sum(-1), 0.5, categorical=True, generator=g
        ),
    }.items():
        logits = row.expand(n, 4).clone().requires_grad_()
        estimate = estimator(logits, torch.Generator().manual_seed(4))
        (grads,) = torch.autograd.grad(estimate.sum(), logits)
        for c in range(4):
            z = _z_score(grads[:, c], exact[c].item())
            assert abs(z) < 4.5, (name, c, z)


def test_eta_zero_is_reinforce_exactly(implementation):
    f = _toy(0.45)
    logits = torch.randn(64, **F64, requires_grad=True)
    estimate = gradext.rebar(f, logits, eta=0.0, generator=torch.Generator().manual_seed(5))
    (grad,) = torch.autograd.grad(estimate.sum(), logits)
    b, _, _ = gradext.conditional_relaxation(
        logits.detach(), generator=torch.Generator().manual_seed(5)
    )
    reinforce = f(b) * (b - torch.sigmoid(logits.detach()))  # f(b) d log p(b) / d logit
    torch.testing.assert_close(grad, reinforce, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(estimate, f(b), rtol=0, atol=0)


def test_f_parameters_get_the_pathwise_gradient_and_the_control_variate_none(implementation):
    """estimate.sum().backward(): f's parameter gets exactly d f(b), the control variate's
    parameters exactly zero (their terms are zero-valued with zero first derivative)."""
    w = torch.tensor(0.3, **F64, requires_grad=True)
    cv = _LinearCV()

    def f(b):
        return ((b - w) ** 2).sum(-1)

    logits = torch.randn(50, 6, **F64, requires_grad=True)
    estimate = gradext.relax(
        f, logits, lambda z: cv(z).sum(-1), 0.7, generator=torch.Generator().manual_seed(0)
    )
    estimate.sum().backward()
    b, _, _ = gradext.conditional_relaxation(
        logits.detach(), 0.7, generator=torch.Generator().manual_seed(0)
    )
    torch.testing.assert_close(w.grad, (-2 * (b - 0.3)).sum(), rtol=1e-12, atol=1e-12)
    for p in cv.parameters():
        assert p.grad is not None and torch.equal(p.grad, torch.zeros_like(p))


@pytest.mark.parametrize("tuned", ["eta", "control_variate"])
def test_variance_gradient_by_finite_differences(implementation, tuned):
    """d sum(g^2) / d (eta or a control variate weight) against central differences of the
    same noise (a seeded generator): the double backward through conditional_relaxation."""
    f = _toy(0.45)
    logits = torch.randn(40, 3, **F64)

    def variance(param):
        x = logits.clone().requires_grad_()
        generator = torch.Generator().manual_seed(6)
        if tuned == "eta":
            estimate = gradext.rebar(lambda b: f(b).sum(-1), x, 0.6, param, generator=generator)
        else:
            estimate = gradext.relax(
                lambda b: f(b).sum(-1),
                x,
                lambda z: (param * torch.sin(3 * z)).sum(-1),
                0.6,
                generator=generator,
            )
        return gradext.estimator_variance(estimate, x)[1]

    param = torch.tensor(0.7, **F64, requires_grad=True)
    (grad,) = torch.autograd.grad(variance(param), param)
    h = 1e-6
    numeric = (
        variance(torch.tensor(0.7 + h, **F64)).detach()
        - variance(torch.tensor(0.7 - h, **F64)).detach()
    ) / (2 * h)
    torch.testing.assert_close(grad, numeric, rtol=1e-6, atol=1e-8)


def _variance(estimator, logit, n, seed):
    return _per_sample_gradients(estimator, logit, n, seed).var().item()


def test_rebar_reduces_variance_when_f_has_an_offset(implementation):
    """f = (b - 0.45)^2 + 1: REINFORCE's variance grows with the offset, REBAR's (eta = 1)
    control variate removes it: at least 5x below."""

    def f(b):
        return (b - 0.45) ** 2 + 1

    reinforce = _variance(lambda x, **kw: gradext.rebar(f, x, eta=0.0, **kw), 0.4, 50_000, 1)
    rebar = _variance(lambda x, **kw: gradext.rebar(f, x, 0.5, 1.0, **kw), 0.4, 50_000, 1)
    assert rebar * 5 < reinforce, (rebar, reinforce)


def test_tuned_relax_is_several_times_below_reinforce(implementation):
    """RELAX with its control variate trained by estimator_variance (Adam, 300 steps of 256
    samples) on the toy problem t = 0.45: variance at least 3x below REINFORCE's, measured on
    fresh noise."""
    f = _toy(0.45)
    torch.manual_seed(0)
    cv = torch.nn.Sequential(torch.nn.Linear(1, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).double()

    def c(z):
        return cv(z.unsqueeze(-1)).squeeze(-1)

    optimizer = torch.optim.Adam(cv.parameters(), lr=0.02)
    for step in range(300):
        logits = torch.full((256,), 0.4, **F64, requires_grad=True)
        estimate = gradext.relax(
            f, logits, c, 0.5, generator=torch.Generator().manual_seed(100 + step)
        )
        _, variance = gradext.estimator_variance(estimate, logits)
        optimizer.zero_grad()
        variance.backward(inputs=list(cv.parameters()))
        optimizer.step()
    relax = _variance(lambda x, **kw: gradext.relax(f, x, c, 0.5, **kw), 0.4, 50_000, 7)
    reinforce = _variance(lambda x, **kw: gradext.rebar(f, x, eta=0.0, **kw), 0.4, 50_000, 7)
    assert relax * 3 < reinforce, (relax, reinforce)


def test_errors_name_the_argument():
    f = _toy(0.45)
    logits = torch.randn(5, 3)
    with pytest.raises(TypeError, match="relax: f must be callable, got int"):
        gradext.relax(3, logits, f)
    with pytest.raises(TypeError, match="relax: control_variate must be callable"):
        gradext.relax(f, logits, None)
    with pytest.raises(
        ValueError,
        match=r"relax: control_variate must return f's output shape "
        r"\(5, 3\), got \(5,\)",
    ):
        gradext.relax(f, logits, lambda z: z.sum(-1))
    with pytest.raises(
        ValueError,
        match=r"rebar: f must return values of a leading part of the "
        r"logits' shape \(5, 3\), got shape \(3,\)",
    ):
        gradext.rebar(lambda b: b.sum(0), logits)
    with pytest.raises(ValueError, match=r"logits' batch shape \(5,\), got shape \(5, 3\)"):
        gradext.rebar(f, logits, categorical=True)
    with pytest.raises(ValueError, match="conditional_relaxation: tau must be a finite number > 0"):
        gradext.rebar(f, logits, tau=0.0)
    with pytest.raises(TypeError, match="rebar: eta must be a number or a tensor, got str"):
        gradext.rebar(f, logits, eta="1")
    with pytest.raises(TypeError, match="rebar: logits must be a floating-point tensor"):
        gradext.rebar(f, torch.ones(3, dtype=torch.long))
    with pytest.raises(ValueError, match="estimator_variance: estimate must be the tensor"):
        gradext.estimator_variance(torch.ones(3), logits)


def test_variance_loss_trains_its_parameters_only(implementation):
    """One backward of -estimate.mean() + variance_loss: the control variate's parameters get
    d sum(g^2) / d phi (against estimator_variance on the same noise), the encoder and decoder
    exactly what -estimate.mean() alone gives them, and the term is 0."""
    f_weight = torch.tensor(0.2, **F64, requires_grad=True)
    encoder = torch.tensor(0.8, **F64, requires_grad=True)
    base = torch.randn(30, 4, **F64)

    def run(with_variance_loss):
        cv = _LinearCV()
        logits = encoder * base

        def f(b):
            return ((b - f_weight) ** 2).sum(-1)

        def c(z):
            return cv(z).sum(-1)

        estimate = gradext.relax(f, logits, c, 0.6, generator=torch.Generator().manual_seed(2))
        loss = -estimate.mean()
        if with_variance_loss:
            term = gradext.variance_loss(estimate, logits, cv.parameters())
            assert term.item() == 0
            loss = loss + term
        else:
            _, variance = gradext.estimator_variance(estimate, logits)
            expected = torch.autograd.grad(variance, list(cv.parameters()), retain_graph=True)
        f_weight.grad = encoder.grad = None
        loss.backward()
        grads = (f_weight.grad.clone(), encoder.grad.clone())
        cv_grads = [p.grad for p in cv.parameters()]
        return grads, (cv_grads if with_variance_loss else expected)

    plain, expected = run(False)
    tuned, got = run(True)
    for a, b in zip(plain, tuned):
        assert torch.equal(a, b)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="variance_loss: parameters must hold at least one"):
        gradext.variance_loss(torch.ones(2, requires_grad=True), base, [])

"""Every sampler with a sample count takes a sample_shape too, as torch.distributions does: a
tuple or torch.Size. () is one sample without a sample dim, (K,) is K, a longer shape is its
product drawn in one call: the same values, shaped, as the int count with the same generator."""

from __future__ import annotations

import pytest
import torch

import gradext


def _samplers():
    positive = torch.rand(4, 3) + 0.5
    return {
        "gaussian_rsample": lambda n, g: gradext.gaussian_rsample(
            torch.zeros(4, 3), torch.zeros(3), n, generator=g
        ),
        "normal_rsample": lambda n, g: gradext.normal_rsample(
            torch.zeros(4, 3), positive, n, generator=g
        ),
        "gamma_rsample": lambda n, g: gradext.gamma_rsample(positive, 2.0, n, generator=g),
        "dirichlet_rsample": lambda n, g: gradext.dirichlet_rsample(positive, n, generator=g),
        "beta_rsample": lambda n, g: gradext.beta_rsample(positive, 1.5, n, generator=g),
        "von_mises_rsample": lambda n, g: gradext.von_mises_rsample(
            torch.zeros(4, 3), positive, n, generator=g
        ),
    }


@pytest.mark.parametrize("name", list(_samplers()))
def test_sample_shapes(implementation, name):
    sample = _samplers()[name]

    def draw(n):
        return sample(n, torch.Generator().manual_seed(3))

    flat = draw(6)
    assert flat.shape == (6, 4, 3)
    assert torch.equal(draw((2, 3)), flat.reshape(2, 3, 4, 3))
    assert torch.equal(draw(torch.Size([6])), flat)
    assert torch.equal(draw([3, 2]), flat.reshape(3, 2, 4, 3))
    assert torch.equal(draw(()), draw(None))


@pytest.mark.parametrize("bad, error, message", [
    ((2, 0), ValueError, "num_samples must hold at least one sample, got \\(2, 0\\)"),
    ((2, 1.5), TypeError, "num_samples as a sample_shape holds ints, got float"),
    ((True,), TypeError, "num_samples as a sample_shape holds ints, got bool"),
    (2.5, TypeError, "num_samples must be None, an int or a sample_shape, got float"),
])  # fmt: skip
def test_bad_sample_shapes_name_the_argument(implementation, bad, error, message):
    with pytest.raises(error, match=f"gamma_rsample: {message}"):
        gradext.gamma_rsample(torch.ones(3), 1.0, bad)


@pytest.mark.parametrize("name", ["gumbel_softmax", "gumbel_sigmoid"])
def test_relaxed_samplers_take_a_sample_count(implementation, name):
    """num_samples (keyword-only: F.gumbel_softmax's signature is kept) draws the samples of the
    logits repeated on new leading dims; gradients sum over them."""
    fn = getattr(gradext, name)
    logits = torch.randn(4, 3, requires_grad=True)
    y = fn(logits, 0.5, num_samples=(2, 3), generator=torch.Generator().manual_seed(1))
    repeated = logits.detach().expand(6, 4, 3)
    expected = fn(repeated, 0.5, generator=torch.Generator().manual_seed(1))
    assert y.shape == (2, 3, 4, 3) and torch.equal(y.reshape(6, 4, 3), expected)
    weights = torch.randn(2, 3, 4, 3)
    (grad,) = torch.autograd.grad((y * weights).sum(), logits)
    leaf = repeated.clone().requires_grad_()
    again = fn(leaf, 0.5, generator=torch.Generator().manual_seed(1))
    (per_sample,) = torch.autograd.grad((again * weights.reshape(6, 4, 3)).sum(), leaf)
    torch.testing.assert_close(grad, per_sample.sum(0))
    assert fn(logits, num_samples=5).shape == (5, 4, 3)

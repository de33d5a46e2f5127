"""torch.distributions classes whose samplers are gradext's fused kernels.

Each class subclasses its torch.distributions counterpart and changes how samples are drawn:
the constructor, arg_constraints, support, expand, log_prob, entropy, mean, variance, cdf, KL
registrations and pickling are torch's own. ``rsample(sample_shape, generator=None)`` and
``sample(sample_shape, generator=None)`` run the fused op (the pure-PyTorch fallback without the
extension) and take a ``torch.Generator``, which torch's samplers do not. Two costs of
construction are cut without changing what it does: validate_args' checks run as one fused pass
where the constraints allow (``_FusedArgumentChecks``; torch's checks, and torch's errors,
otherwise), and Normal skips torch.broadcast_tensors where it would return its inputs.

    Normal                  z = loc + scale * eps (normal_rsample): the fused Gaussian kernels,
                            the backward exact at scale = 0 and keeping no noise
    Gamma, Beta, Dirichlet  implicit reparameterization (gamma_rsample, beta_rsample,
                            dirichlet_rsample): exact gradients to every parameter
    VonMises                with an rsample, which torch's lacks (von_mises_rsample)
    RelaxedBernoulli        the binary Concrete sample (gumbel_sigmoid)
    RelaxedOneHotCategorical  the Concrete / Gumbel-Softmax sample (gumbel_softmax)
    Categorical             exact samples by the fused Gumbel-max kernel (categorical_sample)

The sample_shape goes to the op as its num_samples (gradext's samplers take sample shapes): all
its samples are drawn in one call, shaped sample_shape + batch_shape + event_shape, and their
gradients are reduced inside the fused backward.

Where Pyro is installed the classes also carry its TorchDistributionMixin, as Pyro's own
wrappers of torch's classes do, so that `pyro.sample("z", gradext.distributions.Gamma(a, b))`
works in a model or a guide (torch's classes are not callable, so Pyro rejects them); gradext
does not depend on Pyro.
"""

from __future__ import annotations

import torch
from torch import distributions as td

from gradext import _validation, parameter_check, reference
from gradext.categorical import categorical_sample
from gradext.dirichlet import beta_rsample, dirichlet_rsample
from gradext.gamma import gamma_rsample
from gradext.gaussian import normal_rsample
from gradext.reference.relaxed import saturated_inv_tau
from gradext.relaxed import gumbel_sigmoid, gumbel_softmax
from gradext.von_mises import von_mises_rsample

try:  # Pyro's sample sites call their distributions: its mixin makes these callable there.
    from pyro.distributions.torch_distribution import TorchDistributionMixin as _PyroMixin
except ImportError:  # no Pyro: nothing to mix in

    class _PyroMixin:
        pass


__all__ = [
    "Beta",
    "Categorical",
    "Dirichlet",
    "Gamma",
    "Normal",
    "RelaxedBernoulli",
    "RelaxedOneHotCategorical",
    "VonMises",
]


_ONE_SAMPLE = torch.Size()  # torch's default sample_shape (one sample), and Distribution's shapes


def _sample_shape(name: str, sample_shape) -> torch.Size:
    """sample_shape as a torch.Size, or a TypeError naming the class's method."""
    try:
        return torch.Size(sample_shape)
    except TypeError:
        raise TypeError(
            f"{name}.rsample: sample_shape must be a torch.Size or a tuple of ints, got "
            f"{type(sample_shape).__name__}"
        ) from None


class _FusedSampler:
    """sample() is rsample() without gradient, both through the fused op (``_draw``), which
    takes the sample_shape as its num_samples and returns sample_shape + batch + event dims."""

    def rsample(self, sample_shape=_ONE_SAMPLE, generator: torch.Generator | None = None):
        if type(sample_shape) is not torch.Size:
            sample_shape = _sample_shape(type(self).__name__, sample_shape)
        return self._draw(sample_shape, generator)

    def sample(self, sample_shape=_ONE_SAMPLE, generator: torch.Generator | None = None):
        with torch.no_grad():
            return self.rsample(sample_shape, generator=generator)


class _FusedArgumentChecks(td.Distribution):
    """torch's Distribution.__init__ with its argument checks as one fused pass
    (gradext/parameter_check.py) where they hold; where they do not, or where the pass cannot
    vouch for them, torch's own checks run and raise torch's error.

    Each class lists it after its torch counterpart, which puts it between that class and
    torch.distributions.Distribution in the method resolution order: the torch class's
    constructor broadcasts the parameters as usual, then calls this in place of
    Distribution.__init__."""

    def __init__(self, batch_shape=_ONE_SAMPLE, event_shape=_ONE_SAMPLE, validate_args=None):
        validate = self._validate_args if validate_args is None else validate_args
        if validate and parameter_check.arguments_hold(self):
            super().__init__(batch_shape, event_shape, validate_args=False)
            if validate_args is None:
                # As torch leaves it: no instance flag, the class default
                # (Distribution.set_default_validate_args) decides later checks.
                del self._validate_args
            else:
                self._validate_args = True
        else:
            super().__init__(batch_shape, event_shape, validate_args)


class Normal(_FusedSampler, td.Normal, _FusedArgumentChecks, _PyroMixin):
    """torch.distributions.Normal with gradext.normal_rsample as its sampler: one fused kernel
    each way for all sample_shape samples, gradients sum grad and sum grad * eps to loc and
    scale (the noise drawn again in the backward, never stored)."""

    def __init__(self, loc, scale, validate_args=None):
        # torch's Normal.__init__, less its torch.broadcast_tensors call (about 2 us) where that
        # returns loc and scale themselves: two tensors of one shape, a VAE encoder's output.
        if (
            type(loc) in parameter_check.PLAIN_TENSORS
            and type(scale) in parameter_check.PLAIN_TENSORS
            and (loc.shape == scale.shape)
        ):
            self.loc, self.scale = loc, scale
            # Past torch's Normal.__init__ (named from the class's bases: a test harness may
            # rebind torch.distributions.Normal to this class).
            super(Normal.__bases__[1], self).__init__(loc.size(), validate_args=validate_args)
        else:
            super().__init__(loc, scale, validate_args)

    def expand(self, batch_shape, _instance=None):
        # torch's, given the new instance: torch asks a subclass with an __init__ of its own to
        # make it (Distribution._get_checked_instance).
        if _instance is None:
            _instance = type(self).__new__(type(self))
        return super().expand(batch_shape, _instance=_instance)

    def rsample(self, sample_shape=_ONE_SAMPLE, generator: torch.Generator | None = None):
        # _FusedSampler.rsample with its _draw inlined (so Normal has no _draw): the class a VAE
        # builds at every step, whose [128, 20] latent costs about as much in Python frames as
        # in its two kernels.
        if type(sample_shape) is not torch.Size:
            sample_shape = _sample_shape("Normal", sample_shape)
        return normal_rsample(self.loc, self.scale, sample_shape, generator=generator)


class Gamma(_FusedSampler, td.Gamma, _FusedArgumentChecks, _PyroMixin):
    """torch.distributions.Gamma with gradext.gamma_rsample as its sampler."""

    def _draw(self, sample_shape, generator):
        return gamma_rsample(self.concentration, self.rate, sample_shape, generator=generator)


class Beta(_FusedSampler, td.Beta, _FusedArgumentChecks, _PyroMixin):
    """torch.distributions.Beta with gradext.beta_rsample as its sampler."""

    def _draw(self, sample_shape, generator):
        return beta_rsample(
            self.concentration1, self.concentration0, sample_shape, generator=generator
        )


class Dirichlet(_FusedSampler, td.Dirichlet, _FusedArgumentChecks, _PyroMixin):
    """torch.distributions.Dirichlet with gradext.dirichlet_rsample as its sampler."""

    def _draw(self, sample_shape, generator):
        return dirichlet_rsample(self.concentration, sample_shape, generator=generator)


class VonMises(_FusedSampler, td.VonMises, _FusedArgumentChecks, _PyroMixin):
    """torch.distributions.VonMises with a reparameterized sampler (gradext.von_mises_rsample:
    implicit gradients to the concentration, 1 to loc), which torch's class lacks."""

    has_rsample = True

    def _draw(self, sample_shape, generator):
        return von_mises_rsample(self.loc, self.concentration, sample_shape, generator=generator)


def _per_element(temperature: torch.Tensor | float) -> bool:
    """The fused relaxed ops take one temperature for the whole batch (a number, as torch's
    classes accept, or a one-element tensor, which may require grad). A temperature with several
    elements (per datapoint, per coordinate), which torch's classes broadcast against the
    logits, runs the pure-PyTorch formula below instead."""
    return isinstance(temperature, torch.Tensor) and temperature.numel() != 1


def _scaled_scores(logits, noise, temperature):
    """(logits + noise) / temperature in the math type (float32 or better), the temperature
    broadcast elementwise as torch's classes do; 1 / temperature saturates at the largest finite
    value as in the kernels, so a tiny temperature gives the hard limit, not NaN."""
    math_dtype = torch.promote_types(logits.dtype, torch.float32)
    inv_tau = saturated_inv_tau(temperature, math_dtype)
    return (logits.to(math_dtype) + noise.to(math_dtype)) * inv_tau


class RelaxedBernoulli(_FusedSampler, td.RelaxedBernoulli, _PyroMixin):
    """torch.distributions.RelaxedBernoulli with gradext.gumbel_sigmoid as its sampler: the
    binary Concrete sample sigmoid((logits + logistic noise) / temperature)."""

    def _draw(self, sample_shape, generator):
        if not _per_element(self.temperature):
            return gumbel_sigmoid(
                self.logits, self.temperature, num_samples=sample_shape, generator=generator
            )
        shape = self._extended_shape(sample_shape)
        noise = reference.logistic_noise(shape, self.logits.dtype, self.logits.device, generator)
        scores = _scaled_scores(self.logits, noise, self.temperature)
        return torch.sigmoid(scores).to(self.logits.dtype)


class RelaxedOneHotCategorical(_FusedSampler, td.RelaxedOneHotCategorical, _PyroMixin):
    """torch.distributions.RelaxedOneHotCategorical with gradext.gumbel_softmax as its sampler:
    softmax((logits + Gumbel noise) / temperature) along the categories."""

    def _draw(self, sample_shape, generator):
        if not _per_element(self.temperature):
            return gumbel_softmax(
                self.logits, self.temperature, num_samples=sample_shape, generator=generator
            )
        shape = self._extended_shape(sample_shape)
        noise = reference.gumbel_noise(shape, self.logits.dtype, self.logits.device, generator)
        # The temperature may differ along the categories, so the scores are divided before the
        # softmax's own max shift (the fused kernels shift first, which is the same only for one
        # temperature per row).
        scores = _scaled_scores(self.logits, noise, self.temperature)
        return torch.softmax(scores, dim=-1).to(self.logits.dtype)


class Categorical(td.Categorical, _FusedArgumentChecks, _PyroMixin):
    """torch.distributions.Categorical sampled by gradext's fused Gumbel-max kernel
    (categorical_sample): exact samples, a generator, one call for all sample_shape samples."""

    def sample(self, sample_shape=_ONE_SAMPLE, generator: torch.Generator | None = None):
        shape = _sample_shape(type(self).__name__, sample_shape)
        count, _ = _validation.sample_count(type(self).__name__, shape)
        with torch.no_grad():
            index, _ = categorical_sample(self._sampling_logits(), count or 1, generator=generator)
        return index.reshape(self._extended_shape(shape))

    def _sampling_logits(self) -> torch.Tensor:
        """The logits the kernel samples from, without caching either parametrization that the
        user did not give (torch's lazy probs/logits contract). Built from probs they are
        log(probs), so a zero probability is a -inf logit that is never drawn; torch's lazy
        logits clamp probs to [eps, 1 - eps] first."""
        if "logits" in self.__dict__:
            return self.logits
        return torch.log(self.probs)

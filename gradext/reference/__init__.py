"""Pure-PyTorch implementations of every gradext op.

They are the fallback when the compiled extension is missing, the oracle the tests compare the
kernels with, and the "eager" baseline of the benchmarks, so they are written the way a careful
user would write each op in plain PyTorch.
"""

from gradext.reference.categorical import categorical_sample, categorical_sample_from_noise
from gradext.reference.conditional_relaxation import (
    conditional_noise,
    conditional_relaxation,
    relaxations_from_noise,
)
from gradext.reference.control_variates import (
    estimator_variance,
    rebar,
    relax,
    variance_loss,
)
from gradext.reference.dirichlet import dirichlet_rsample
from gradext.reference.gamma import gamma_rsample, standard_gamma_dz_dalpha
from gradext.reference.gaussian import (
    gaussian_rsample,
    gaussian_rsample_from_noise,
    normal_rsample,
    normal_rsample_from_noise,
)
from gradext.reference.relaxed import (
    gumbel_noise,
    gumbel_sigmoid,
    gumbel_sigmoid_from_noise,
    gumbel_softmax,
    gumbel_softmax_from_noise,
    logistic_noise,
)
from gradext.reference.score_function import (
    score_function_loo,
    score_function_loo_masked,
    vimco,
    vimco_signal,
)
from gradext.reference.von_mises import von_mises_rsample

__all__ = [
    "categorical_sample",
    "categorical_sample_from_noise",
    "conditional_noise",
    "conditional_relaxation",
    "dirichlet_rsample",
    "estimator_variance",
    "gamma_rsample",
    "gaussian_rsample",
    "gaussian_rsample_from_noise",
    "gumbel_noise",
    "gumbel_sigmoid",
    "gumbel_sigmoid_from_noise",
    "gumbel_softmax",
    "gumbel_softmax_from_noise",
    "logistic_noise",
    "normal_rsample",
    "normal_rsample_from_noise",
    "rebar",
    "relax",
    "relaxations_from_noise",
    "score_function_loo",
    "score_function_loo_masked",
    "standard_gamma_dz_dalpha",
    "variance_loss",
    "vimco",
    "vimco_signal",
    "von_mises_rsample",
]

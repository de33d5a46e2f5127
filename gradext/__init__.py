"""gradext: fused kernels for gradients through random samples in PyTorch.

Ops (each a drop-in function; CPU and CUDA kernels, pure-PyTorch fallback everywhere else):
    gaussian_rsample   pathwise Gaussian sampling, many samples per datapoint, fused backward
    normal_rsample     the same with torch's (loc, scale) parametrization (exact at scale 0)
    gamma_rsample      Gamma sampling with implicit reparameterization gradients
    dirichlet_rsample  Dirichlet (and beta_rsample: Beta) sampling, the same gradients
    von_mises_rsample  von Mises (angular) sampling, the same gradients
    gumbel_softmax     Gumbel-Softmax / straight-through, drop-in for F.gumbel_softmax
    gumbel_sigmoid     binary Concrete (relaxed Bernoulli), soft or straight-through
    conditional_relaxation  a discrete sample with REBAR's two relaxations of its noise
    rebar, relax       unbiased control-variate gradients of discrete latents (on the above)
    score_function_loo REINFORCE with the leave-one-out baseline (RLOO), K samples
    vimco              the K-sample bound with VIMCO's leave-one-out learning signals
    categorical_sample Gumbel-max categorical samples and their differentiable log-probs

One module per op family holds its public functions and, beside them, the fake kernels,
autograd formulas and vmap rules of its dispatcher ops (torch.ops.gradext.*): gaussian.py,
gamma.py, dirichlet.py, von_mises.py, relaxed.py, conditional_relaxation.py, score_function.py,
categorical.py. Their
pure-PyTorch fallbacks are in reference/.
"""

import torch  # noqa: F401  (load libtorch before the extension that links against it)

from gradext import philox_uniform  # noqa: F401  (the fake kernel of the noise test view)
from gradext._extension import cpu_isa, extension_error, has_cuda, has_extension
from gradext.categorical import categorical_sample
from gradext.conditional_relaxation import conditional_relaxation
from gradext.control_variates import estimator_variance, rebar, relax, variance_loss
from gradext.dirichlet import beta_rsample, dirichlet_rsample
from gradext.gamma import gamma_rsample
from gradext.gaussian import gaussian_rsample, normal_rsample
from gradext.relaxed import gumbel_sigmoid, gumbel_softmax
from gradext.score_function import score_function_loo, vimco
from gradext.von_mises import von_mises_rsample

__version__ = "0.1.0"


def __getattr__(name: str):
    # gradext.distributions is imported on first use: where Pyro is installed it imports
    # pyro.distributions (seconds), which `import gradext` should not pay.
    if name == "distributions":
        import importlib

        return importlib.import_module("gradext.distributions")
    raise AttributeError(f"module 'gradext' has no attribute {name!r}")


__all__ = [
    "beta_rsample",
    "categorical_sample",
    "conditional_relaxation",
    "cpu_isa",
    "dirichlet_rsample",
    "estimator_variance",
    "extension_error",
    "gamma_rsample",
    "gaussian_rsample",
    "gumbel_sigmoid",
    "gumbel_softmax",
    "has_cuda",
    "has_extension",
    "normal_rsample",
    "rebar",
    "relax",
    "score_function_loo",
    "variance_loss",
    "vimco",
    "von_mises_rsample",
]

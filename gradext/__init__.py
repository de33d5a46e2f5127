"""gradext: fused kernels for gradients through random samples in PyTorch.

Ops (each a drop-in function; CPU and CUDA kernels, pure-PyTorch fallback everywhere else):
    gaussian_rsample   pathwise Gaussian sampling, many samples per datapoint, fused backward
    gumbel_softmax     Gumbel-Softmax / straight-through, drop-in for F.gumbel_softmax
    gumbel_sigmoid     binary Concrete (relaxed Bernoulli), soft or straight-through
    score_function_loo REINFORCE with the leave-one-out baseline (RLOO), K samples
    vimco              the K-sample bound with VIMCO's leave-one-out learning signals
    categorical_sample Gumbel-max categorical samples and their differentiable log-probs
"""

import torch  # noqa: F401  (load libtorch before the extension that links against it)

from gradext import _ops  # noqa: F401  (fake kernels and autograd for torch.ops.gradext)
from gradext._extension import cpu_isa, extension_error, has_cuda, has_extension
from gradext.gaussian import gaussian_rsample
from gradext.relaxed import gumbel_sigmoid, gumbel_softmax
from gradext.score_function import categorical_sample, score_function_loo, vimco

__version__ = "0.1.0"

__all__ = [
    "categorical_sample",
    "cpu_isa",
    "extension_error",
    "gaussian_rsample",
    "gumbel_sigmoid",
    "gumbel_softmax",
    "has_cuda",
    "has_extension",
    "score_function_loo",
    "vimco",
]

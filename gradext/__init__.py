"""gradext: fused kernels for gradients through random samples in PyTorch.

Ops (each a drop-in function; CPU and CUDA kernels, pure-PyTorch fallback everywhere else):
    gaussian_rsample   pathwise Gaussian sampling, many samples per datapoint, fused backward
    gumbel_softmax     Gumbel-Softmax / straight-through, drop-in for F.gumbel_softmax
    gumbel_sigmoid     binary Concrete (relaxed Bernoulli), soft or straight-through
"""

import torch  # noqa: F401  (load libtorch before the extension that links against it)

from gradext import _ops  # noqa: F401  (fake kernels and autograd for torch.ops.gradext)
from gradext._extension import cpu_isa, extension_error, has_cuda, has_extension
from gradext.gaussian import gaussian_rsample
from gradext.relaxed import gumbel_sigmoid, gumbel_softmax

__version__ = "0.1.0"

__all__ = [
    "cpu_isa",
    "extension_error",
    "gaussian_rsample",
    "gumbel_sigmoid",
    "gumbel_softmax",
    "has_cuda",
    "has_extension",
]

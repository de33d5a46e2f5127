"""Pure-PyTorch implementations of every gradext op.

They are the fallback when the compiled extension is missing, the oracle the tests compare the
kernels with, and the "eager" baseline of the benchmarks, so they are written the way a careful
user would write each op in plain PyTorch.
"""

from gradext.reference.gaussian import gaussian_rsample, gaussian_rsample_from_noise
from gradext.reference.relaxed import (
    gumbel_noise,
    gumbel_sigmoid,
    gumbel_sigmoid_from_noise,
    gumbel_softmax,
    gumbel_softmax_from_noise,
    logistic_noise,
)

__all__ = [
    "gaussian_rsample",
    "gaussian_rsample_from_noise",
    "gumbel_noise",
    "gumbel_sigmoid",
    "gumbel_sigmoid_from_noise",
    "gumbel_softmax",
    "gumbel_softmax_from_noise",
    "logistic_noise",
]

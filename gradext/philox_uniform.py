"""The random-number contract's test view: ``_philox_uniform(like, seed, offset)`` returns, in
float64, the uniforms every kernel derives from Philox word i for ``like``'s dtype, so that a test
can rebuild any op's noise (normal, Gumbel, logistic) exactly. C++: csrc/ops/philox_uniform.cpp,
csrc/ops/cuda/philox_uniform_kernel.cu; the contract: docs/design.md, "Random numbers"."""

import torch

from gradext._custom_op import register_fake


@register_fake("gradext::_philox_uniform")
def _philox_uniform_fake(like, seed, offset):
    return like.new_empty(like.shape, dtype=torch.float64)

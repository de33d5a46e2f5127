"""A small run of every CUDA kernel path of every op in the registry (gradext.op_registry: each
entry's ``smoke``: shape classes such as the dense and strided Gaussian kernels, the 4-thread,
warp and block row kernels, ragged and empty sizes, every dtype, forward and backward), the
random-number test view and the distributions' fused argument check, for compute-sanitizer
memcheck and racecheck:

    compute-sanitizer --tool memcheck python -m gradext.bench.cuda_smoke
"""

from __future__ import annotations

import torch

import gradext
from gradext import op_registry


def main() -> None:
    assert gradext.has_cuda(), "needs a CUDA device and a CUDA build of gradext"
    device = torch.device("cuda")
    for dtype in op_registry.DTYPES:
        for case in op_registry.OPS:
            case.smoke(device, dtype)
        torch.ops.gradext._philox_uniform(torch.empty(33, 7, device=device, dtype=dtype), 3, 4)
        values = [torch.rand(n, device=device, dtype=dtype) + 0.5 for n in (0, 33, 70_001)]
        values.append(torch.tensor([1.0, -1.0], device=device, dtype=dtype).expand(9, 2))
        found = torch.ops.gradext._first_invalid_parameter(values, [True] * len(values))
        assert found == 3, found
    torch.cuda.synchronize()
    print(f"cuda smoke: ok ({', '.join(case.name for case in op_registry.OPS)})")


if __name__ == "__main__":
    main()

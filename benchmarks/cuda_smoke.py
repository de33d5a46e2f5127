"""A small run of every CUDA op and kernel path, for compute-sanitizer memcheck and racecheck:
Gaussian dense and strided kernels, Gumbel-Softmax with 4 threads, a warp and a block per row,
Gumbel-sigmoid, score_function_loo and vimco (samples leading, in the middle, last),
categorical_sample (the same three row kernels), forward and backward, every dtype, ragged and
empty sizes, row counts that leave groups of a warp without a row."""

from __future__ import annotations

import torch

import gradext


def main() -> None:
    assert gradext.has_cuda(), "needs a CUDA device and a CUDA build of gradext"
    for dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
        for shape_mu, shape_logvar, k in [
            ((64, 32), (64, 32), 3),   # dense kernels
            ((7, 5), (5,), None),      # strided kernels, numel not a multiple of 4
            ((33,), (33,), 2),         # dense shape, ragged total
            ((0, 4), (0, 4), 2),       # empty
        ]:
            mu = torch.randn(shape_mu, device="cuda", dtype=dtype, requires_grad=True)
            logvar = torch.randn(shape_logvar, device="cuda", dtype=dtype, requires_grad=True)
            z = gradext.gaussian_rsample(mu, logvar, k)
            z.backward(torch.randn_like(z))
            torch.ops.gradext._gaussian_rsample_seeded(mu.detach(), logvar.detach(), k, 1, 4)
        for rows, categories in [(33, 2), (9, 10), (70, 64), (5, 1024), (3, 1500), (2, 40_000),
                                 (0, 7)]:
            logits = torch.randn(rows, categories, device="cuda", dtype=dtype, requires_grad=True)
            for hard in (False, True):
                y = gradext.gumbel_softmax(logits, tau=0.5, hard=hard)
                y.backward(torch.randn_like(y))
                b = gradext.gumbel_sigmoid(logits, tau=0.5, hard=hard)
                b.backward(torch.randn_like(b))
            torch.ops.gradext._philox_uniform(logits, 3, 4)
            if categories > 0:
                index, log_prob = gradext.categorical_sample(logits, 3)
                log_prob.backward(torch.randn_like(log_prob))
        for shape, dim in [((4, 33), 0), ((3, 5, 7), 1), ((9, 2), -1), ((2, 0), 0)]:
            values = torch.randn(shape, device="cuda", dtype=dtype, requires_grad=True)
            log_prob = torch.randn(shape, device="cuda", dtype=dtype, requires_grad=True)
            for estimator in (gradext.score_function_loo, gradext.vimco):
                out = estimator(values, log_prob, dim)
                out.backward(torch.randn_like(out))
    torch.cuda.synchronize()
    print("cuda smoke: ok")


if __name__ == "__main__":
    main()

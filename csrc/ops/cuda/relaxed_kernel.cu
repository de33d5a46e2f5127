// CUDA implementation of gumbel_softmax and gumbel_sigmoid.
//
// Gumbel-Softmax is row-wise (docs/design.md, "Kernel shapes"): a group of kGroup threads reduces
// one row, 4 threads for rows of up to 64 categories, a warp up to 1024 (several rows per block
// either way) and a whole block of 512 threads beyond (row_reduce.cuh). Each thread walks its
// row in runs of 4 columns. Pass 1 keeps an online (max, argmax, sum of exp) triple, combined
// across the group; pass 2 recomputes the noise (cheaper than a round trip through memory) and
// writes the soft sample and, when hard, the one-hot. Rows of any length, 2 categories to LLM
// vocabularies, take one launch.
#include <ATen/core/Tensor.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/PhiloxUtils.cuh>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <cmath>

#include "common/invalid_inputs.h"
#include "common/philox.h"
#include "common/random_transforms.h"
#include "common/scalar_math.h"
#include "ops/cuda/cuda_generator.h"
#include "ops/cuda/launch.cuh"
#include "ops/cuda/row_reduce.cuh"
#include "ops/relaxed.h"

namespace gradext::cuda {
namespace {

template <typename scalar_t, int kGroup>
__global__ void gumbel_softmax_forward_impl(const scalar_t* __restrict__ logits,
                                            scalar_t* __restrict__ y,
                                            scalar_t* __restrict__ y_soft, int64_t rows,
                                            int64_t categories, double inv_tau_d,
                                            at::PhiloxCudaState philox) {
  using opmath_t = at::opmath_type<scalar_t>;
  __shared__ RowStat<opmath_t> shared[kGroup > kWarp ? kGroup / kWarp : 1];
  const auto [seed, offset] = at::cuda::philox::unpack(philox);
  const PhiloxStream stream = PhiloxStream::make(seed, offset);
  const opmath_t inv_tau = math::saturated_inv_tau(inv_tau_d, opmath_t(0));
  const int t = group_lane<kGroup>(ThreadIndex::current());
  const int64_t C = categories;
  const int64_t runs = (C + 3) / 4;
  auto op = [inv_tau](RowStat<opmath_t> a, RowStat<opmath_t> b) { return combine(a, b, inv_tau); };
  for (RowWalk<kGroup> walk(ThreadIndex::current()); walk.more(rows); walk.next()) {
    const int64_t row = walk.row_or_last(rows);
    const bool write = walk.active(rows);
    const scalar_t* x = logits + row * C;
    RowStat<opmath_t> st{-INFINITY, C, opmath_t(0)};
    for (int64_t run = t; run < runs; run += kGroup) {
      opmath_t s[4];
      row_scores(stream, x, row * C, 4 * run, C, s);
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        if (4 * run + j < C) accumulate(st, s[j], 4 * run + j, inv_tau);
      }
    }
    st = group_reduce<kGroup>(st, op, shared);
    // A row with a NaN, a +inf or no finite logit: NaN soft and hard samples (invalid_inputs.h).
    const bool valid = softmax_row_is_valid(st.sum);
    const int64_t best = st.index;
    const opmath_t inv_sum = opmath_t(1) / st.sum;
    scalar_t* soft = (y_soft != nullptr ? y_soft : y) + row * C;
    for (int64_t run = t; write && run < runs; run += kGroup) {
      opmath_t s[4];
      row_scores(stream, x, row * C, 4 * run, C, s);
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int64_t c = 4 * run + j;
        if (c >= C) break;
        soft[c] = static_cast<scalar_t>(math::exp((s[j] - st.max) * inv_tau) * inv_sum);
        if (y_soft != nullptr) {
          y[row * C + c] = valid ? static_cast<scalar_t>(c == best ? 1 : 0) : quiet_nan<scalar_t>();
        }
      }
    }
  }
}

template <typename scalar_t, int kGroup>
__global__ void gumbel_softmax_backward_impl(const scalar_t* __restrict__ grad,
                                             const scalar_t* __restrict__ y_soft,
                                             scalar_t* __restrict__ grad_logits, int64_t rows,
                                             int64_t categories, double inv_tau_d) {
  using opmath_t = at::opmath_type<scalar_t>;
  __shared__ opmath_t shared[kGroup > kWarp ? kGroup / kWarp : 1];
  const opmath_t inv_tau = math::saturated_inv_tau(inv_tau_d, opmath_t(0));
  const int t = group_lane<kGroup>(ThreadIndex::current());
  const int64_t C = categories;
  auto add = [](opmath_t a, opmath_t b) { return a + b; };
  for (RowWalk<kGroup> walk(ThreadIndex::current()); walk.more(rows); walk.next()) {
    const int64_t row = walk.row_or_last(rows);
    const scalar_t* g = grad + row * C;
    const scalar_t* ys = y_soft + row * C;
    opmath_t dot = 0;
    for (int64_t c = t; c < C; c += kGroup) {
      dot += static_cast<opmath_t>(g[c]) * static_cast<opmath_t>(ys[c]);
    }
    dot = group_reduce<kGroup>(dot, add, shared);
    for (int64_t c = t; walk.active(rows) && c < C; c += kGroup) {
      const opmath_t yc = static_cast<opmath_t>(ys[c]);
      grad_logits[row * C + c] =
          static_cast<scalar_t>(yc * (static_cast<opmath_t>(g[c]) - dot) * inv_tau);
    }
  }
}

// Gumbel-sigmoid: one thread per Philox block of 4 elements of the flat tensor.
template <typename scalar_t>
__global__ void gumbel_sigmoid_forward_impl(const scalar_t* __restrict__ logits,
                                            scalar_t* __restrict__ y,
                                            scalar_t* __restrict__ y_soft, int64_t numel,
                                            double inv_tau_d, at::PhiloxCudaState philox) {
  using opmath_t = at::opmath_type<scalar_t>;
  const auto [seed, offset] = at::cuda::philox::unpack(philox);
  const PhiloxStream stream = PhiloxStream::make(seed, offset);
  const opmath_t inv_tau = math::saturated_inv_tau(inv_tau_d, opmath_t(0));
  scalar_t* soft = y_soft != nullptr ? y_soft : y;
  const GridStride walk(ThreadIndex::current());
  for (int64_t b = walk.first; 4 * b < numel; b += walk.stride) {
    const Philox4x32 r = stream.block(static_cast<uint64_t>(b));
    const uint32_t words[4] = {r.x, r.y, r.z, r.w};
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t i = 4 * b + j;
      if (i >= numel) break;
      const opmath_t s = static_cast<opmath_t>(logits[i]) + logistic<opmath_t>(words[j]);
      soft[i] = static_cast<scalar_t>(opmath_t(1) / (opmath_t(1) + math::exp(-s * inv_tau)));
      if (y_soft != nullptr) y[i] = static_cast<scalar_t>(bernoulli_of_score(s));
    }
  }
}

template <typename scalar_t>
__global__ void gumbel_sigmoid_backward_impl(const scalar_t* __restrict__ grad,
                                             const scalar_t* __restrict__ y_soft,
                                             scalar_t* __restrict__ grad_logits, int64_t numel,
                                             double inv_tau_d) {
  using opmath_t = at::opmath_type<scalar_t>;
  const opmath_t inv_tau = math::saturated_inv_tau(inv_tau_d, opmath_t(0));
  const GridStride walk(ThreadIndex::current());
  for (int64_t i = walk.first; i < numel; i += walk.stride) {
    const opmath_t yi = static_cast<opmath_t>(y_soft[i]);
    grad_logits[i] =
        static_cast<scalar_t>(static_cast<opmath_t>(grad[i]) * yi * (opmath_t(1) - yi) * inv_tau);
  }
}

using ops::Relaxation;

std::tuple<at::Tensor, at::Tensor> relaxed_forward(Relaxation r, const at::Tensor& logits,
                                                   double tau, bool hard,
                                                   const std::optional<at::Generator>& generator,
                                                   std::optional<at::PhiloxCudaState> seeded) {
  c10::cuda::CUDAGuard guard(logits.device());
  const ops::RelaxedProblem p = ops::make_relaxed_problem(r, logits, tau);
  at::Tensor y = at::empty_like(p.logits);
  at::Tensor y_soft = hard ? at::empty_like(p.logits) : at::empty({0}, p.logits.options());
  const int64_t numel = p.logits.numel();
  if (numel == 0) return {y, y_soft};
  const at::PhiloxCudaState philox =
      seeded ? *seeded : next_philox_state(generator, logits.device().index());
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, y.scalar_type(),
                                  "gradext_relaxed_forward_cuda", [&] {
    const auto* x = p.logits.const_data_ptr<scalar_t>();
    auto* out = y.mutable_data_ptr<scalar_t>();
    auto* soft = hard ? y_soft.mutable_data_ptr<scalar_t>() : nullptr;
    if (r == Relaxation::kSigmoid) {
      gumbel_sigmoid_forward_impl<scalar_t><<<grid_for((numel + 3) / 4), kThreads, 0, stream>>>(
          x, out, soft, numel, p.inv_tau, philox);
    } else {
      launch_by_row_length(p.rows, p.categories, [&](auto group, int64_t blocks, int threads) {
        gumbel_softmax_forward_impl<scalar_t, decltype(group)::value>
            <<<blocks, threads, 0, stream>>>(x, out, soft, p.rows, p.categories, p.inv_tau,
                                             philox);
      });
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {y, y_soft};
}

at::Tensor relaxed_backward(Relaxation r, const at::Tensor& grad, const at::Tensor& y_soft,
                            double tau) {
  c10::cuda::CUDAGuard guard(grad.device());
  ops::check_relaxed_backward(r, grad, y_soft, tau);
  const at::Tensor g = grad.contiguous();
  const at::Tensor ys = y_soft.contiguous();
  at::Tensor out = at::empty_like(ys);
  const int64_t numel = ys.numel();
  if (numel == 0) return out;
  const int64_t C = ys.dim() == 0 ? 1 : ys.size(-1);
  const int64_t rows = numel / C;
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, ys.scalar_type(),
                                  "gradext_relaxed_backward_cuda", [&] {
    const auto* gp = g.const_data_ptr<scalar_t>();
    const auto* yp = ys.const_data_ptr<scalar_t>();
    auto* op = out.mutable_data_ptr<scalar_t>();
    if (r == Relaxation::kSigmoid) {
      gumbel_sigmoid_backward_impl<scalar_t><<<grid_for(numel), kThreads, 0, stream>>>(
          gp, yp, op, numel, 1.0 / tau);
    } else {
      launch_by_row_length(rows, C, [&](auto group, int64_t blocks, int threads) {
        gumbel_softmax_backward_impl<scalar_t, decltype(group)::value>
            <<<blocks, threads, 0, stream>>>(gp, yp, op, rows, C, 1.0 / tau);
      });
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

at::PhiloxCudaState seeded_state(int64_t seed, int64_t offset) {
  return at::PhiloxCudaState(static_cast<uint64_t>(seed), static_cast<uint64_t>(offset));
}

// The three ops of each relaxation, as registered with the dispatcher.
template <Relaxation R>
std::tuple<at::Tensor, at::Tensor> sample_op(const at::Tensor& logits, const at::Tensor& tau,
                                             bool hard, std::optional<at::Generator> generator) {
  return relaxed_forward(R, logits, ops::tau_value(R, tau), hard, generator, std::nullopt);
}

template <Relaxation R>
std::tuple<at::Tensor, at::Tensor> seeded_op(const at::Tensor& logits, const at::Tensor& tau,
                                             bool hard, int64_t seed, int64_t offset) {
  return relaxed_forward(R, logits, ops::tau_value(R, tau), hard, std::nullopt,
                         seeded_state(seed, offset));
}

template <Relaxation R>
at::Tensor backward_op(const at::Tensor& grad, const at::Tensor& y_soft, const at::Tensor& tau) {
  return relaxed_backward(R, grad, y_soft, ops::tau_value(R, tau));
}

}  // namespace
}  // namespace gradext::cuda

TORCH_LIBRARY_IMPL(gradext, CUDA, m) {
  using namespace gradext::cuda;
  m.impl("gumbel_softmax", &sample_op<Relaxation::kSoftmax>);
  m.impl("_gumbel_softmax_seeded", &seeded_op<Relaxation::kSoftmax>);
  m.impl("_gumbel_softmax_backward", &backward_op<Relaxation::kSoftmax>);
  m.impl("gumbel_sigmoid", &sample_op<Relaxation::kSigmoid>);
  m.impl("_gumbel_sigmoid_seeded", &seeded_op<Relaxation::kSigmoid>);
  m.impl("_gumbel_sigmoid_backward", &backward_op<Relaxation::kSigmoid>);
}

// CUDA implementation of categorical_sample.
//
// Row-wise like gumbel_softmax (row_reduce.cuh): a group of threads (4 up to 64 categories, a
// warp up to 1024, a 512-thread block beyond) handles one draw d = s * rows + b. In one pass over
// the row it keeps the argmax of logits + g (the draw) and the online logsumexp of the logits
// (its log-normalizer). The noise of draw d, column c is element d * C + c of the stream, as on
// the CPU and as gumbel_softmax would draw it for row d of logits.expand(S, ...).
// Backward: a group per logits row: logsumexp, sum of the incoming gradients of the row's
// draws, then d logits = -softmax * that sum, plus each draw's gradient at its index.
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
#include "ops/categorical.h"
#include "ops/cuda/cuda_generator.h"
#include "ops/cuda/launch.cuh"
#include "ops/cuda/row_reduce.cuh"

namespace gradext::cuda {
namespace {

template <typename T>
struct ArgMax {  // the largest score so far and its first index
  T value;
  int64_t index;
};

template <typename T>
__device__ __forceinline__ ArgMax<T> shfl_xor(ArgMax<T> v, int mask) {
  return ArgMax<T>{cuda::shfl_xor(v.value, mask), cuda::shfl_xor(v.index, mask)};
}

template <typename T>
__device__ __forceinline__ ArgMax<T> better(ArgMax<T> a, ArgMax<T> b) {
  return b.value > a.value || (b.value == a.value && b.index < a.index) ? b : a;
}

template <typename T>
__device__ __forceinline__ T log_normalizer(const RowStat<T>& st) {
  return st.max + math::log(st.sum);  // NaN or -inf for a row that defines no distribution
}

template <typename scalar_t, int kGroup>
__global__ void categorical_sample_forward_impl(const scalar_t* __restrict__ logits,
                                                scalar_t* __restrict__ log_prob,
                                                int64_t* __restrict__ index, int64_t rows,
                                                int64_t categories, int64_t draws,
                                                at::PhiloxCudaState philox) {
  using opmath_t = at::opmath_type<scalar_t>;
  __shared__ ArgMax<opmath_t> shared_best[kGroup > kWarp ? kGroup / kWarp : 1];
  __shared__ RowStat<opmath_t> shared_norm[kGroup > kWarp ? kGroup / kWarp : 1];
  const auto [seed, offset] = at::cuda::philox::unpack(philox);
  const PhiloxStream stream = PhiloxStream::make(seed, offset);
  const int t = group_lane<kGroup>(ThreadIndex::current());
  const int64_t C = categories;
  const int64_t runs = (C + 3) / 4;
  auto pick = [](ArgMax<opmath_t> a, ArgMax<opmath_t> b) { return better(a, b); };
  auto merge = [](RowStat<opmath_t> a, RowStat<opmath_t> b) { return combine(a, b, opmath_t(1)); };
  for (RowWalk<kGroup> walk(ThreadIndex::current()); walk.more(draws); walk.next()) {
    const int64_t d = walk.row_or_last(draws);
    const scalar_t* x = logits + (d % rows) * C;
    ArgMax<opmath_t> best{-INFINITY, C};
    RowStat<opmath_t> norm{-INFINITY, C, opmath_t(0)};
    for (int64_t run = t; run < runs; run += kGroup) {
      opmath_t s[4];
      row_scores(stream, x, d * C, 4 * run, C, s);
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int64_t c = 4 * run + j;
        if (c >= C) break;
        if (s[j] > best.value) best = ArgMax<opmath_t>{s[j], c};
        accumulate(norm, static_cast<opmath_t>(x[c]), c, opmath_t(1));
      }
    }
    best = group_reduce<kGroup>(best, pick, shared_best);
    norm = group_reduce<kGroup>(norm, merge, shared_norm);
    if (t == 0 && walk.active(draws)) {
      // A row that defines no distribution: index 0 and a NaN log_prob (invalid_inputs.h).
      const opmath_t lse = log_normalizer(norm);
      const bool valid = log_normalizer_is_valid(lse);
      const int64_t chosen = valid ? best.index : 0;
      index[d] = chosen;
      log_prob[d] = valid ? static_cast<scalar_t>(static_cast<opmath_t>(x[chosen]) - lse)
                          : quiet_nan<scalar_t>();
    }
  }
}

template <typename scalar_t, int kGroup>
__global__ void categorical_sample_backward_impl(const scalar_t* __restrict__ grad,
                                                 const scalar_t* __restrict__ logits,
                                                 const int64_t* __restrict__ index,
                                                 scalar_t* __restrict__ grad_logits,
                                                 int64_t rows, int64_t categories,
                                                 int64_t samples) {
  using opmath_t = at::opmath_type<scalar_t>;
  __shared__ RowStat<opmath_t> shared_norm[kGroup > kWarp ? kGroup / kWarp : 1];
  __shared__ opmath_t shared_sum[kGroup > kWarp ? kGroup / kWarp : 1];
  const int t = group_lane<kGroup>(ThreadIndex::current());
  const int64_t C = categories;
  auto merge = [](RowStat<opmath_t> a, RowStat<opmath_t> b) { return combine(a, b, opmath_t(1)); };
  auto add = [](opmath_t a, opmath_t b) { return a + b; };
  for (RowWalk<kGroup> walk(ThreadIndex::current()); walk.more(rows); walk.next()) {
    const int64_t row = walk.row_or_last(rows);
    const bool write = walk.active(rows);
    const scalar_t* x = logits + row * C;
    scalar_t* out = grad_logits + row * C;
    RowStat<opmath_t> norm{-INFINITY, C, opmath_t(0)};
    for (int64_t c = t; c < C; c += kGroup) accumulate(norm, static_cast<opmath_t>(x[c]), c, opmath_t(1));
    opmath_t grad_total = 0;
    for (int64_t s = t; s < samples; s += kGroup) grad_total += static_cast<opmath_t>(grad[s * rows + row]);
    norm = group_reduce<kGroup>(norm, merge, shared_norm);
    grad_total = group_reduce<kGroup>(grad_total, add, shared_sum);
    const opmath_t lse = log_normalizer(norm);
    for (int64_t c = t; write && c < C; c += kGroup) {
      out[c] = static_cast<scalar_t>(-math::exp(static_cast<opmath_t>(x[c]) - lse) * grad_total);
    }
    // The draws' one-hot terms, added by one thread (several draws may share a category).
    if constexpr (kGroup > kWarp) {
      __syncthreads();
    } else {
      __syncwarp();
    }
    if (t == 0 && write) {
      for (int64_t s = 0; s < samples; ++s) {
        const int64_t c = index[s * rows + row];
        // The op is public (torch.ops.gradext): an index out of range is a device-side assert,
        // as in torch's own indexing kernels (checking on the host would cost a sync).
        CUDA_KERNEL_ASSERT(c >= 0 && c < C);
        out[c] = static_cast<scalar_t>(static_cast<opmath_t>(out[c]) +
                                       static_cast<opmath_t>(grad[s * rows + row]));
      }
    }
  }
}

std::tuple<at::Tensor, at::Tensor> categorical_forward(
    const at::Tensor& logits, int64_t num_samples, const std::optional<at::Generator>& generator,
    std::optional<at::PhiloxCudaState> seeded) {
  c10::cuda::CUDAGuard guard(logits.device());
  const ops::CategoricalProblem p = ops::make_categorical_problem(logits, num_samples);
  at::Tensor index = at::empty(p.out_shape, p.logits.options().dtype(at::kLong));
  at::Tensor log_prob = at::empty(p.out_shape, p.logits.options());
  const int64_t draws = index.numel();
  if (draws == 0) return {log_prob, index};
  const at::PhiloxCudaState philox =
      seeded ? *seeded : next_philox_state(generator, logits.device().index());
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.logits.scalar_type(),
                                  "gradext_categorical_forward_cuda", [&] {
    launch_by_row_length(draws, p.categories, [&](auto group, int64_t blocks, int threads) {
      categorical_sample_forward_impl<scalar_t, decltype(group)::value>
          <<<blocks, threads, 0, stream>>>(p.logits.const_data_ptr<scalar_t>(),
                                           log_prob.mutable_data_ptr<scalar_t>(),
                                           index.mutable_data_ptr<int64_t>(), p.rows,
                                           p.categories, draws, philox);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
  return {log_prob, index};
}

std::tuple<at::Tensor, at::Tensor> sample_op(const at::Tensor& logits, int64_t num_samples,
                                             std::optional<at::Generator> generator) {
  return categorical_forward(logits, num_samples, generator, std::nullopt);
}

std::tuple<at::Tensor, at::Tensor> seeded_op(const at::Tensor& logits, int64_t num_samples,
                                             int64_t seed, int64_t offset) {
  return categorical_forward(logits, num_samples, std::nullopt,
                             at::PhiloxCudaState(static_cast<uint64_t>(seed),
                                                 static_cast<uint64_t>(offset)));
}

at::Tensor backward_op(const at::Tensor& grad, const at::Tensor& logits, const at::Tensor& index) {
  c10::cuda::CUDAGuard guard(logits.device());
  ops::check_categorical_backward(grad, logits, index);
  const at::Tensor x = logits.contiguous();
  const at::Tensor g = grad.contiguous();
  const at::Tensor idx = index.contiguous();
  at::Tensor out = at::empty_like(x);
  if (out.numel() == 0) return out;
  const int64_t C = x.size(-1);
  const int64_t rows = x.numel() / C;
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(),
                                  "gradext_categorical_backward_cuda", [&] {
    launch_by_row_length(rows, C, [&](auto group, int64_t blocks, int threads) {
      categorical_sample_backward_impl<scalar_t, decltype(group)::value>
          <<<blocks, threads, 0, stream>>>(g.const_data_ptr<scalar_t>(),
                                           x.const_data_ptr<scalar_t>(),
                                           idx.const_data_ptr<int64_t>(),
                                           out.mutable_data_ptr<scalar_t>(), rows, C,
                                           index.size(0));
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
  return out;
}

}  // namespace
}  // namespace gradext::cuda

TORCH_LIBRARY_IMPL(gradext, CUDA, m) {
  using namespace gradext::cuda;
  m.impl("categorical_sample", &sample_op);
  m.impl("_categorical_sample_seeded", &seeded_op);
  m.impl("_categorical_sample_backward", &backward_op);
}

// CUDA implementation of score_function_loo and vimco.
//
// One thread per datapoint (docs/design.md, "Kernel shapes"): datapoint (o, i) of the [outer, K,
// inner] view loops over its K samples in order k = 0 .. K-1, the order the CPU kernels use, so
// float32 results agree bitwise with them (leave_one_out.h holds the shared math). With the
// sample axis leading or in the middle, neighbouring threads read neighbouring addresses.
#include <ATen/core/Tensor.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <array>
#include <cmath>

#include "common/leave_one_out.h"
#include "ops/cuda/launch.cuh"
#include "ops/score_function.h"

namespace gradext::cuda {
namespace {

// The samples of datapoint p = o * inner + i start at (o * K) * inner + i, stride inner.
struct SampleView {
  int64_t samples, inner;
  __device__ __forceinline__ int64_t first(int64_t p) const {
    return (p / inner) * samples * inner + p % inner;
  }
};

template <typename scalar_t>
__global__ void loo_mean_impl(const scalar_t* __restrict__ f, scalar_t* __restrict__ out,
                              int64_t datapoints, SampleView v) {
  using opmath_t = at::opmath_type<scalar_t>;
  const opmath_t K = static_cast<opmath_t>(v.samples);
  const GridStride walk(ThreadIndex::current());
  for (int64_t p = walk.first; p < datapoints; p += walk.stride) {
    const scalar_t* x = f + v.first(p);
    opmath_t total = 0;
    for (int64_t k = 0; k < v.samples; ++k) total += static_cast<opmath_t>(x[k * v.inner]);
    out[p] = static_cast<scalar_t>(total / K);
  }
}

// d log_prob_k = grad * (f_k - mean f) / (K - 1).
template <typename scalar_t>
__global__ void loo_backward_impl(const scalar_t* __restrict__ grad,
                                  const scalar_t* __restrict__ f, scalar_t* __restrict__ out,
                                  int64_t datapoints, SampleView v) {
  using opmath_t = at::opmath_type<scalar_t>;
  const opmath_t K = static_cast<opmath_t>(v.samples);
  const opmath_t K_minus_1 = static_cast<opmath_t>(v.samples - 1);
  const GridStride walk(ThreadIndex::current());
  for (int64_t p = walk.first; p < datapoints; p += walk.stride) {
    const int64_t first = v.first(p);
    const scalar_t* x = f + first;
    opmath_t total = 0;
    for (int64_t k = 0; k < v.samples; ++k) total += static_cast<opmath_t>(x[k * v.inner]);
    const opmath_t mean = total / K;
    const opmath_t scale = static_cast<opmath_t>(grad[p]) / K_minus_1;
    for (int64_t k = 0; k < v.samples; ++k) {
      out[first + k * v.inner] = static_cast<scalar_t>((static_cast<opmath_t>(x[k * v.inner]) - mean) * scale);
    }
  }
}

// One pass of top-two statistics: L = logsumexp - log K, and the statistics for the backward.
template <typename scalar_t>
__global__ void vimco_forward_impl(const scalar_t* __restrict__ log_weights,
                                   scalar_t* __restrict__ out,
                                   at::opmath_type<scalar_t>* __restrict__ stats,
                                   int64_t datapoints, SampleView v, double log_k_d) {
  using opmath_t = at::opmath_type<scalar_t>;
  const opmath_t log_k = static_cast<opmath_t>(log_k_d);
  const GridStride walk(ThreadIndex::current());
  for (int64_t p = walk.first; p < datapoints; p += walk.stride) {
    const scalar_t* x = log_weights + v.first(p);
    auto st = TopTwoLogSumExp<opmath_t>::start(static_cast<opmath_t>(x[0]));
    for (int64_t k = 1; k < v.samples; ++k) {
      st.push(static_cast<opmath_t>(x[k * v.inner]), static_cast<int32_t>(k));
    }
    out[p] = static_cast<scalar_t>(st.bound(log_k));
    store_vimco_stats(st, stats, datapoints, p);
  }
}

// From the saved statistics: a pass for the leave-one-out sums, then both gradients per sample
// (leave_one_out.h).
template <typename scalar_t>
__global__ void vimco_backward_impl(const scalar_t* __restrict__ grad,
                                    const scalar_t* __restrict__ log_weights,
                                    const at::opmath_type<scalar_t>* __restrict__ stats,
                                    scalar_t* __restrict__ grad_weights,
                                    scalar_t* __restrict__ grad_log_prob, int64_t datapoints,
                                    SampleView v) {
  using opmath_t = at::opmath_type<scalar_t>;
  const GridStride walk(ThreadIndex::current());
  for (int64_t p = walk.first; p < datapoints; p += walk.stride) {
    const int64_t first = v.first(p);
    const scalar_t* x = log_weights + first;
    const auto st = load_vimco_stats(stats, datapoints, p);
    auto sums = LeaveOneOutSums<opmath_t>::start();
    for (int64_t k = 0; k < v.samples; ++k) {
      sums.add(static_cast<opmath_t>(x[k * v.inner]), static_cast<int32_t>(k), st.m1, st.m2, st.i1);
    }
    const auto row = VimcoSignals<opmath_t>::from(st, sums, v.samples);
    const opmath_t g = static_cast<opmath_t>(grad[p]);
    const opmath_t poison_signal = signal_poison(st.poison);
    const opmath_t poison_weight = weight_poison(st.poison);
    for (int64_t k = 0; k < v.samples; ++k) {
      const opmath_t xk = static_cast<opmath_t>(x[k * v.inner]);
      const opmath_t w = row.weight(xk);
      if (grad_weights != nullptr) {
        grad_weights[first + k * v.inner] =
            static_cast<scalar_t>(g * (w * row.inv_s1) + poison_weight);
      }
      if (grad_log_prob != nullptr) {
        const opmath_t signal =
            k == st.i1 ? vimco_signal_argmax(st, sums, row) : row.signal_not_argmax(xk, w);
        grad_log_prob[first + k * v.inner] = static_cast<scalar_t>(g * signal + poison_signal);
      }
    }
  }
}

SampleView view_of(const ops::SampleAxisProblem& p) { return SampleView{p.samples, p.inner}; }

int64_t datapoints_of(const ops::SampleAxisProblem& p) { return p.outer * p.inner; }

at::Tensor score_function_loo(const at::Tensor& f, const at::Tensor& log_prob, int64_t dim) {
  c10::cuda::CUDAGuard guard(f.device());
  const auto p = ops::make_sample_axis_problem("score_function_loo", "f", f, "log_prob", log_prob, dim);
  at::Tensor out = at::empty(p.reduced_shape, p.values.options());
  const int64_t n = datapoints_of(p);
  if (n == 0) return out;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.values.scalar_type(), "gradext_loo_cuda", [&] {
    loo_mean_impl<scalar_t><<<grid_for(n), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
        p.values.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(), n, view_of(p));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

at::Tensor score_function_loo_backward(const at::Tensor& grad, const at::Tensor& f, int64_t dim) {
  c10::cuda::CUDAGuard guard(f.device());
  const auto p = ops::make_sample_axis_backward_problem("_score_function_loo_backward", grad, f, dim);
  at::Tensor out = at::empty_like(p.values);
  const int64_t n = datapoints_of(p);
  if (n == 0) return out;
  const at::Tensor g = grad.contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.values.scalar_type(), "gradext_loo_cuda", [&] {
    loo_backward_impl<scalar_t><<<grid_for(n), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
        g.const_data_ptr<scalar_t>(), p.values.const_data_ptr<scalar_t>(),
        out.mutable_data_ptr<scalar_t>(), n, view_of(p));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> vimco(const at::Tensor& log_weights, const at::Tensor& log_prob,
                                         int64_t dim) {
  c10::cuda::CUDAGuard guard(log_weights.device());
  const auto p = ops::make_sample_axis_problem("vimco", "log_weights", log_weights, "log_prob",
                                               log_prob, dim);
  at::Tensor out = at::empty(p.reduced_shape, p.values.options());
  at::Tensor stats = ops::make_vimco_stats(p);
  const int64_t n = datapoints_of(p);
  if (n == 0) return {out, stats};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.values.scalar_type(), "gradext_vimco_cuda", [&] {
    vimco_forward_impl<scalar_t><<<grid_for(n), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
        p.values.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(),
        stats.mutable_data_ptr<at::opmath_type<scalar_t>>(), n, view_of(p),
        std::log(static_cast<double>(p.samples)));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {out, stats};
}

std::tuple<at::Tensor, at::Tensor> vimco_backward(const at::Tensor& grad,
                                                  const at::Tensor& log_weights,
                                                  const at::Tensor& stats, int64_t dim,
                                                  std::array<bool, 2> output_mask) {
  c10::cuda::CUDAGuard guard(log_weights.device());
  const auto p = ops::make_sample_axis_backward_problem("_vimco_backward", grad, log_weights, dim);
  ops::check_vimco_stats(stats, p);
  const auto empty = [&] { return at::empty({0}, p.values.options()); };
  at::Tensor grad_weights = output_mask[0] ? at::empty_like(p.values) : empty();
  at::Tensor grad_log_prob = output_mask[1] ? at::empty_like(p.values) : empty();
  const int64_t n = datapoints_of(p);
  if (n == 0 || !(output_mask[0] || output_mask[1])) return {grad_weights, grad_log_prob};
  const at::Tensor g = grad.contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.values.scalar_type(), "gradext_vimco_cuda", [&] {
    vimco_backward_impl<scalar_t><<<grid_for(n), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
        g.const_data_ptr<scalar_t>(), p.values.const_data_ptr<scalar_t>(),
        stats.const_data_ptr<at::opmath_type<scalar_t>>(),
        output_mask[0] ? grad_weights.mutable_data_ptr<scalar_t>() : nullptr,
        output_mask[1] ? grad_log_prob.mutable_data_ptr<scalar_t>() : nullptr, n, view_of(p));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {grad_weights, grad_log_prob};
}

}  // namespace
}  // namespace gradext::cuda

TORCH_LIBRARY_IMPL(gradext, CUDA, m) {
  using namespace gradext::cuda;
  m.impl("score_function_loo", &score_function_loo);
  m.impl("_score_function_loo_backward", &score_function_loo_backward);
  m.impl("vimco", &vimco);
  m.impl("_vimco_backward", &vimco_backward);
}

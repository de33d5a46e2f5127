// CUDA implementation of the Gaussian ops (gaussian_rsample and normal_rsample: the kernels are
// templates over the Spread, common/gaussian_spread.h).
//
// Two kernel shapes per direction (docs/design.md, "Kernel shapes"):
//  * blocked, when numel(S) % 4 == 0 for the sample shape S: a thread owns 4 consecutive
//    elements of S (one Philox block per sample) and loops over the samples: the forward reuses
//    the mean and sd from registers for every sample; the backward reduces over the
//    samples inside the thread (no atomics, so the gradient is deterministic). Dense inputs
//    come in with one vector load; broadcast or strided ones (a per-dimension spread of shape
//    [D] against a mean of [B, D]) through Layout2D index arithmetic, once per thread, not per
//    sample.
//  * strided, for the other sizes: one thread per Philox block of the output (forward) or per
//    element of S (backward, which draws the element's Box-Muller pair on its own).
#include <ATen/core/Tensor.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/PhiloxUtils.cuh>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <algorithm>
#include <string>

#include "common/gaussian_spread.h"
#include "common/layout2d.h"
#include "common/philox.h"
#include "common/random_transforms.h"
#include "common/scalar_math.h"
#include "ops/cuda/cuda_generator.h"
#include "ops/cuda/launch.cuh"
#include "ops/gaussian.h"

namespace gradext::cuda {
namespace {

template <typename scalar_t>
struct alignas(4 * sizeof(scalar_t)) Vec4 {
  scalar_t v[4];
};

template <typename scalar_t>
__device__ __forceinline__ Vec4<scalar_t> load4(const scalar_t* p) {
  return *reinterpret_cast<const Vec4<scalar_t>*>(p);
}

template <typename scalar_t>
__device__ __forceinline__ void store4(scalar_t* p, const Vec4<scalar_t>& v) {
  *reinterpret_cast<Vec4<scalar_t>*>(p) = v;
}

__device__ __forceinline__ void publish_rng_state(int64_t* rng_state, uint64_t seed,
                                                  uint64_t offset) {
  if (rng_state != nullptr && blockIdx.x == 0 && blockIdx.y == 0 && threadIdx.x == 0) {
    rng_state[0] = static_cast<int64_t>(seed);
    rng_state[1] = static_cast<int64_t>(offset);
  }
}

// Elements 4g .. 4g + 3 of S of input k (0: the mean, 1: the spread in the forward; 0: the
// spread in the backward): one aligned vector load when the inputs are dense, else through the layout.
template <bool kDense, typename scalar_t>
__device__ __forceinline__ Vec4<scalar_t> load_group(const scalar_t* __restrict__ x,
                                                     const Layout2D& layout, int k, int64_t g) {
  if constexpr (kDense) {
    return load4(x + 4 * g);
  } else {
    Vec4<scalar_t> v;
#pragma unroll
    for (int j = 0; j < 4; ++j) v.v[j] = x[layout.offset(k, 4 * g + j)];
    return v;
  }
}

// grid.x strides over the groups of 4 elements of S; grid.y splits the samples into chunks.
template <typename scalar_t, typename Spread, bool kDense>
__global__ void gaussian_forward_blocked_impl(const scalar_t* __restrict__ mu,
                                              const scalar_t* __restrict__ spread,
                                              scalar_t* __restrict__ z, Layout2D layout,
                                              int64_t groups, int64_t num_samples,
                                              int64_t samples_per_chunk,
                                              at::PhiloxCudaState philox, int64_t* rng_state) {
  using opmath_t = at::opmath_type<scalar_t>;
  const auto [seed, offset] = at::cuda::philox::unpack(philox);
  publish_rng_state(rng_state, seed, offset);
  const PhiloxStream stream = PhiloxStream::make(seed, offset);
  int64_t k_begin, k_end;
  chunk_samples(ThreadIndex::current().block_y, samples_per_chunk, num_samples, &k_begin, &k_end);
  const int64_t sample_numel = 4 * groups;
  const GridStride walk(ThreadIndex::current());
  for (int64_t g = walk.first; g < groups; g += walk.stride) {
    const Vec4<scalar_t> m = load_group<kDense>(mu, layout, 0, g);
    const Vec4<scalar_t> l = load_group<kDense>(spread, layout, 1, g);
    opmath_t mean[4], std[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      mean[j] = static_cast<opmath_t>(m.v[j]);
      std[j] = Spread::std_dev(static_cast<opmath_t>(l.v[j]));
    }
    for (int64_t k = k_begin; k < k_end; ++k) {
      opmath_t eps[4];
      normal4(stream, static_cast<uint64_t>(k * groups + g), eps);
      Vec4<scalar_t> out;
#pragma unroll
      for (int j = 0; j < 4; ++j) out.v[j] = static_cast<scalar_t>(mean[j] + std[j] * eps[j]);
      store4(z + k * sample_numel + 4 * g, out);
    }
  }
}

// One thread per Philox block of the output (4 elements), any layout of the mean and spread.
template <typename scalar_t, typename Spread>
__global__ void gaussian_forward_strided_impl(const scalar_t* __restrict__ mu,
                                              const scalar_t* __restrict__ spread,
                                              scalar_t* __restrict__ z, Layout2D layout,
                                              int64_t sample_numel, int64_t total,
                                              at::PhiloxCudaState philox, int64_t* rng_state) {
  using opmath_t = at::opmath_type<scalar_t>;
  const auto [seed, offset] = at::cuda::philox::unpack(philox);
  publish_rng_state(rng_state, seed, offset);
  const PhiloxStream stream = PhiloxStream::make(seed, offset);
  const int64_t blocks = (total + 3) / 4;
  const GridStride walk(ThreadIndex::current());
  for (int64_t b = walk.first; b < blocks; b += walk.stride) {
    opmath_t eps[4];
    normal4(stream, static_cast<uint64_t>(b), eps);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t i = 4 * b + j;
      if (i >= total) break;
      const int64_t s = i % sample_numel;
      const opmath_t m = static_cast<opmath_t>(mu[layout.offset(0, s)]);
      const opmath_t l = static_cast<opmath_t>(spread[layout.offset(1, s)]);
      z[i] = static_cast<scalar_t>(m + Spread::std_dev(l) * eps[j]);
    }
  }
}

// grad is contiguous (the host makes it so) and the outputs are fresh tensors of shape S.
template <typename scalar_t, typename Spread, bool kDense>
__global__ void gaussian_backward_blocked_impl(const scalar_t* __restrict__ grad,
                                               const scalar_t* __restrict__ spread,
                                               scalar_t* __restrict__ grad_mu,
                                               scalar_t* __restrict__ grad_spread,
                                               Layout2D layout, int64_t groups,
                                               int64_t num_samples,
                                               const int64_t* __restrict__ rng_state) {
  using opmath_t = at::opmath_type<scalar_t>;
  const PhiloxStream stream = PhiloxStream::make(static_cast<uint64_t>(rng_state[0]),
                                                 static_cast<uint64_t>(rng_state[1]));
  const int64_t sample_numel = 4 * groups;
  const GridStride walk(ThreadIndex::current());
  for (int64_t g = walk.first; g < groups; g += walk.stride) {
    opmath_t sum_grad[4] = {0, 0, 0, 0}, sum_grad_eps[4] = {0, 0, 0, 0};
    for (int64_t k = 0; k < num_samples; ++k) {
      const Vec4<scalar_t> gv = load4(grad + k * sample_numel + 4 * g);
      opmath_t eps[4];
      normal4(stream, static_cast<uint64_t>(k * groups + g), eps);
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const opmath_t gj = static_cast<opmath_t>(gv.v[j]);
        sum_grad[j] += gj;
        sum_grad_eps[j] += gj * eps[j];
      }
    }
    const Vec4<scalar_t> l = load_group<kDense>(spread, layout, 0, g);
    Vec4<scalar_t> out_mu, out_spread;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const opmath_t slope = Spread::std_dev_derivative(static_cast<opmath_t>(l.v[j]));
      out_mu.v[j] = static_cast<scalar_t>(sum_grad[j]);
      out_spread.v[j] = static_cast<scalar_t>(sum_grad_eps[j] * slope);
    }
    if (grad_mu != nullptr) store4(grad_mu + 4 * g, out_mu);
    store4(grad_spread + 4 * g, out_spread);
  }
}

// One thread per element of S, for numel(S) % 4 != 0 (a sample's elements then straddle
// Philox blocks): each element's noise is drawn on its own (normal_at).
template <typename scalar_t, typename Spread>
__global__ void gaussian_backward_strided_impl(const scalar_t* __restrict__ grad,
                                               const scalar_t* __restrict__ spread,
                                               scalar_t* __restrict__ grad_mu,
                                               scalar_t* __restrict__ grad_spread,
                                               Layout2D layout, int64_t sample_numel,
                                               int64_t num_samples,
                                               const int64_t* __restrict__ rng_state) {
  using opmath_t = at::opmath_type<scalar_t>;
  const PhiloxStream stream = PhiloxStream::make(static_cast<uint64_t>(rng_state[0]),
                                                 static_cast<uint64_t>(rng_state[1]));
  const GridStride walk(ThreadIndex::current());
  for (int64_t s = walk.first; s < sample_numel; s += walk.stride) {
    opmath_t sum_grad = 0, sum_grad_eps = 0;
    for (int64_t k = 0; k < num_samples; ++k) {
      const int64_t i = k * sample_numel + s;
      const opmath_t gi = static_cast<opmath_t>(grad[i]);
      sum_grad += gi;
      sum_grad_eps += gi * normal_at<opmath_t>(stream, static_cast<uint64_t>(i));
    }
    const opmath_t l = static_cast<opmath_t>(spread[layout.offset(0, s)]);
    if (grad_mu != nullptr) grad_mu[s] = static_cast<scalar_t>(sum_grad);
    grad_spread[s] = static_cast<scalar_t>(sum_grad_eps * Spread::std_dev_derivative(l));
  }
}

template <typename scalar_t>
bool aligned4(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % (4 * sizeof(scalar_t)) == 0;
}

template <typename Spread>
void gaussian_forward_cuda(const ops::GaussianForwardProblem& p, at::Tensor& z,
                           at::PhiloxCudaState philox, at::Tensor& rng_state) {
  const int64_t total = z.numel();
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, z.scalar_type(),
                                  "gaussian_forward_cuda", [&] {
    const auto* mean = p.mean.const_data_ptr<scalar_t>();
    const auto* spread = p.spread.const_data_ptr<scalar_t>();
    auto* out = z.mutable_data_ptr<scalar_t>();
    if (p.sample_numel % 4 == 0) {
      const bool dense = p.layout.all_contiguous(2) && aligned4<scalar_t>(mean) &&
                         aligned4<scalar_t>(spread);
      const int64_t groups = p.sample_numel / 4;
      // Split the samples across grid.y until the launch has about one full wave of threads.
      const SampleChunks grid = gaussian_sample_chunks(
          groups, p.num_samples, at::cuda::getCurrentDeviceProperties()->multiProcessorCount);
      const auto launch = [&](auto kernel) {
        kernel<<<dim3(grid.grid_x, grid.chunks), kThreads, 0, stream>>>(
            mean, spread, out, p.layout, groups, p.num_samples, grid.per_chunk, philox,
            rng_state.mutable_data_ptr<int64_t>());
      };
      if (dense) {
        launch(gaussian_forward_blocked_impl<scalar_t, Spread, true>);
      } else {
        launch(gaussian_forward_blocked_impl<scalar_t, Spread, false>);
      }
    } else {
      gaussian_forward_strided_impl<scalar_t, Spread>
          <<<grid_for((total + 3) / 4), kThreads, 0, stream>>>(
              mean, spread, out, p.layout, p.sample_numel, total, philox,
              rng_state.mutable_data_ptr<int64_t>());
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}

// The four ops of one parametrization (ops/gaussian.h), registered below for each.
template <typename P>
struct GaussianCudaOps {
  static std::tuple<at::Tensor, at::Tensor> run_forward(
      const at::Tensor& mean, const at::Tensor& spread, std::optional<int64_t> num_samples,
      const std::optional<at::PhiloxCudaState>& seeded, std::optional<at::Generator> generator) {
    c10::cuda::CUDAGuard guard(mean.device());
    const ops::GaussianForwardProblem p =
        ops::make_gaussian_forward_problem(P::names, mean, spread, num_samples);
    at::Tensor z = at::empty(p.out_shape, p.mean.options());
    at::Tensor rng_state = at::empty({2}, mean.options().dtype(at::kLong));
    if (z.numel() == 0) {
      rng_state.zero_();
      return {z, rng_state};
    }
    at::PhiloxCudaState philox;
    if (seeded.has_value()) {
      philox = *seeded;
    } else {
      philox = next_philox_state(generator, mean.device().index());
    }
    gaussian_forward_cuda<typename P::Spread>(p, z, philox, rng_state);
    return {z, rng_state};
  }

  static std::tuple<at::Tensor, at::Tensor> sample(const at::Tensor& mean,
                                                   const at::Tensor& spread,
                                                   std::optional<int64_t> num_samples,
                                                   std::optional<at::Generator> generator) {
    return run_forward(mean, spread, num_samples, std::nullopt, std::move(generator));
  }

  static std::tuple<at::Tensor, at::Tensor> seeded(const at::Tensor& mean,
                                                   const at::Tensor& spread,
                                                   std::optional<int64_t> num_samples,
                                                   int64_t seed, int64_t offset) {
    return run_forward(
        mean, spread, num_samples,
        at::PhiloxCudaState(static_cast<uint64_t>(seed), static_cast<uint64_t>(offset)),
        std::nullopt);
  }

  static std::tuple<at::Tensor, at::Tensor> replay(const at::Tensor& mean,
                                                   const at::Tensor& spread,
                                                   std::optional<int64_t> num_samples,
                                                   const at::Tensor& rng_state) {
    const std::string op = std::string("_") + P::names.op + "_replay";
    ops::check_rng_state(rng_state, mean.device(), op.c_str());
    // The pointer form of PhiloxCudaState (the one CUDA graph capture uses): the kernel reads
    // seed and offset from rng_state on the device, so nothing waits for the host. The kernel
    // only reads through these pointers; the constructor takes them non-const.
    auto* state = const_cast<int64_t*>(rng_state.const_data_ptr<int64_t>());
    return run_forward(mean, spread, num_samples, at::PhiloxCudaState(state, state + 1, 0),
                       std::nullopt);
  }

  static std::tuple<at::Tensor, at::Tensor> backward(const at::Tensor& grad,
                                                     const at::Tensor& spread,
                                                     const at::Tensor& rng_state,
                                                     at::IntArrayRef mean_size,
                                                     bool has_sample_dim, bool need_grad_mean) {
    using Spread = typename P::Spread;
    c10::cuda::CUDAGuard guard(grad.device());
    const ops::GaussianBackwardProblem p = ops::make_gaussian_backward_problem(
        P::names, grad, spread, rng_state, mean_size, has_sample_dim);
    at::Tensor grad_mean = ops::empty_grad_mean(p, need_grad_mean);
    at::Tensor grad_spread = at::empty(p.sample_shape, p.grad.options());
    if (p.sample_numel > 0 && p.num_samples == 0) {
      grad_mean.zero_();
      grad_spread.zero_();
    } else if (p.sample_numel > 0) {
      cudaStream_t stream = at::cuda::getCurrentCUDAStream();
      AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.grad.scalar_type(),
                                      "gaussian_backward_cuda", [&] {
        const auto* g = p.grad.const_data_ptr<scalar_t>();
        const auto* sp = p.spread.const_data_ptr<scalar_t>();
        const int64_t* state = rng_state.const_data_ptr<int64_t>();
        scalar_t* mean_out = need_grad_mean ? grad_mean.mutable_data_ptr<scalar_t>() : nullptr;
        scalar_t* spread_out = grad_spread.mutable_data_ptr<scalar_t>();
        if (p.sample_numel % 4 == 0 && aligned4<scalar_t>(g)) {
          const bool dense = p.layout.all_contiguous(1) && aligned4<scalar_t>(sp);
          const int64_t groups = p.sample_numel / 4;
          const auto launch = [&](auto kernel) {
            kernel<<<grid_for(groups), kThreads, 0, stream>>>(g, sp, mean_out, spread_out,
                                                              p.layout, groups, p.num_samples,
                                                              state);
          };
          if (dense) {
            launch(gaussian_backward_blocked_impl<scalar_t, Spread, true>);
          } else {
            launch(gaussian_backward_blocked_impl<scalar_t, Spread, false>);
          }
        } else {
          gaussian_backward_strided_impl<scalar_t, Spread>
              <<<grid_for(p.sample_numel), kThreads, 0, stream>>>(
                  g, sp, mean_out, spread_out, p.layout, p.sample_numel, p.num_samples, state);
        }
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      });
    }
    return ops::reduce_gaussian_grads(grad_mean, grad_spread, mean_size, spread.sizes(),
                                      need_grad_mean);
  }
};

}  // namespace
}  // namespace gradext::cuda

TORCH_LIBRARY_IMPL(gradext, CUDA, m) {
  using gradext::cuda::GaussianCudaOps;
  using LogVar = GaussianCudaOps<gradext::ops::LogVarParametrization>;
  using Scale = GaussianCudaOps<gradext::ops::ScaleParametrization>;
  m.impl("gaussian_rsample", &LogVar::sample);
  m.impl("_gaussian_rsample_seeded", &LogVar::seeded);
  m.impl("_gaussian_rsample_replay", &LogVar::replay);
  m.impl("_gaussian_rsample_backward", &LogVar::backward);
  m.impl("normal_rsample", &Scale::sample);
  m.impl("_normal_rsample_seeded", &Scale::seeded);
  m.impl("_normal_rsample_replay", &Scale::replay);
  m.impl("_normal_rsample_backward", &Scale::backward);
}

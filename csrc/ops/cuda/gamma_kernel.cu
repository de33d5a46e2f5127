// CUDA implementation of the gamma_rsample ops: one thread per output element (grid-stride),
// the same per-element code as the CPU kernels (csrc/common/gamma_element.h).
//
// The forward's rejection loop runs a data-dependent number of proposals, so lanes of a warp
// diverge when one rejects; each proposal is accepted with probability >= 0.95, so a warp
// usually finishes in one or two rounds. The element's words come from its own Philox
// sub-stream, so the generator's offset advances by a constant per call (cuda_generator.h)
// whatever the proposals.
//
// A parameter that defines no Gamma distribution (not positive and finite) stops the kernel
// with a device-side assertion naming the argument, as torch's indexing kernels do: a host
// check would cost a synchronization per call. The CPU kernels raise a ValueError instead.
#include <ATen/core/Tensor.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/PhiloxUtils.cuh>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "common/gamma_element.h"
#include "common/layout2d.h"
#include "ops/cuda/cuda_generator.h"
#include "ops/cuda/launch.cuh"
#include "ops/gamma.h"

namespace gradext::cuda {
namespace {

template <typename scalar_t>
__global__ void gamma_forward_impl(const scalar_t* __restrict__ concentration,
                                   const scalar_t* __restrict__ rate, scalar_t* __restrict__ z,
                                   Layout2D layout, int64_t sample_numel, int64_t total,
                                   at::PhiloxCudaState philox) {
  using opmath_t = at::opmath_type<scalar_t>;
  const auto [seed, offset] = at::cuda::philox::unpack(philox);
  const GridStride walk(ThreadIndex::current());
  for (int64_t e = walk.first; e < total; e += walk.stride) {
    const int64_t s = e % sample_numel;
    const auto alpha = static_cast<opmath_t>(concentration[layout.offset(0, s)]);
    const auto beta = static_cast<opmath_t>(rate[layout.offset(1, s)]);
    CUDA_KERNEL_ASSERT(gamma_sampler::valid_parameter(alpha) &&
                       "gamma_rsample: concentration must be positive and finite");
    CUDA_KERNEL_ASSERT(gamma_sampler::valid_parameter(beta) &&
                       "gamma_rsample: rate must be positive and finite");
    z[e] = static_cast<scalar_t>(
        gamma_sampler::gamma_sample<scalar_t>(seed, offset, static_cast<uint64_t>(e), alpha, beta));
  }
}

template <typename scalar_t>
__global__ void gamma_backward_impl(const scalar_t* __restrict__ grad,
                                    const scalar_t* __restrict__ z,
                                    const scalar_t* __restrict__ concentration,
                                    const scalar_t* __restrict__ rate,
                                    scalar_t* __restrict__ grad_concentration,
                                    scalar_t* __restrict__ grad_rate, Layout2D layout,
                                    int64_t sample_numel, int64_t total) {
  const GridStride walk(ThreadIndex::current());
  for (int64_t e = walk.first; e < total; e += walk.stride) {
    const int64_t s = e % sample_numel;
    const auto g = static_cast<double>(grad[e]);
    const auto zv = static_cast<double>(z[e]);
    const auto beta = static_cast<double>(rate[layout.offset(1, s)]);
    if (grad_concentration != nullptr) {
      const auto alpha = static_cast<double>(concentration[layout.offset(0, s)]);
      grad_concentration[e] =
          static_cast<scalar_t>(gamma_sampler::grad_concentration<scalar_t>(g, zv, alpha, beta));
    }
    if (grad_rate != nullptr) {
      grad_rate[e] = static_cast<scalar_t>(gamma_sampler::grad_rate(g, zv, beta));
    }
  }
}

at::Tensor run_forward(const at::Tensor& concentration, const at::Tensor& rate,
                       std::optional<int64_t> num_samples,
                       const std::optional<at::PhiloxCudaState>& seeded,
                       const std::optional<at::Generator>& generator) {
  c10::cuda::CUDAGuard guard(concentration.device());
  const ops::GammaForwardProblem p =
      ops::make_gamma_forward_problem(concentration, rate, num_samples);
  at::Tensor z = at::empty(p.out_shape, p.concentration.options());
  const int64_t total = z.numel();
  if (total == 0) return z;
  const at::PhiloxCudaState philox =
      seeded.has_value() ? *seeded : next_philox_state(generator, concentration.device().index());
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, z.scalar_type(),
                                  "gamma_rsample_forward_cuda", [&] {
    gamma_forward_impl<scalar_t><<<grid_for(total), kThreads, 0, stream>>>(
        p.concentration.const_data_ptr<scalar_t>(), p.rate.const_data_ptr<scalar_t>(),
        z.mutable_data_ptr<scalar_t>(), p.layout, p.sample_numel, total, philox);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return z;
}

at::Tensor gamma_rsample_cuda(const at::Tensor& concentration, const at::Tensor& rate,
                              std::optional<int64_t> num_samples,
                              std::optional<at::Generator> generator) {
  return run_forward(concentration, rate, num_samples, std::nullopt, generator);
}

at::Tensor gamma_rsample_seeded_cuda(const at::Tensor& concentration, const at::Tensor& rate,
                                     std::optional<int64_t> num_samples, int64_t seed,
                                     int64_t offset) {
  return run_forward(
      concentration, rate, num_samples,
      at::PhiloxCudaState(static_cast<uint64_t>(seed), static_cast<uint64_t>(offset)),
      std::nullopt);
}

std::tuple<at::Tensor, at::Tensor> gamma_rsample_backward_cuda(const at::Tensor& grad,
                                                               const at::Tensor& z,
                                                               const at::Tensor& concentration,
                                                               const at::Tensor& rate,
                                                               std::array<bool, 2> output_mask) {
  c10::cuda::CUDAGuard guard(grad.device());
  const ops::GammaBackwardProblem p =
      ops::make_gamma_backward_problem(grad, z, concentration, rate);
  // Named tensors, not a structured binding: the C++17 build's lambdas cannot capture one.
  at::Tensor grad_concentration, grad_rate;
  std::tie(grad_concentration, grad_rate) = ops::empty_gamma_grads(p, output_mask);
  const int64_t total = p.z.numel();
  if (total > 0 && (output_mask[0] || output_mask[1])) {
    cudaStream_t stream = at::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.grad.scalar_type(),
                                    "gamma_rsample_backward_cuda", [&] {
      gamma_backward_impl<scalar_t><<<grid_for(total), kThreads, 0, stream>>>(
          p.grad.const_data_ptr<scalar_t>(), p.z.const_data_ptr<scalar_t>(),
          p.concentration.const_data_ptr<scalar_t>(), p.rate.const_data_ptr<scalar_t>(),
          output_mask[0] ? grad_concentration.mutable_data_ptr<scalar_t>() : nullptr,
          output_mask[1] ? grad_rate.mutable_data_ptr<scalar_t>() : nullptr, p.layout,
          p.sample_numel, total);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  }
  return {grad_concentration, grad_rate};
}

}  // namespace
}  // namespace gradext::cuda

TORCH_LIBRARY_IMPL(gradext, CUDA, m) {
  m.impl("gamma_rsample", &gradext::cuda::gamma_rsample_cuda);
  m.impl("_gamma_rsample_seeded", &gradext::cuda::gamma_rsample_seeded_cuda);
  m.impl("_gamma_rsample_backward", &gradext::cuda::gamma_rsample_backward_cuda);
}

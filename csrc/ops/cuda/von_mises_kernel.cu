// CUDA implementation of the von_mises_rsample ops: one thread per output element (grid-stride),
// the same per-element code as the CPU kernels (csrc/common/von_mises_sampler.h).
//
// The forward's rejection loop runs a data-dependent number of proposals, so lanes of a warp
// diverge when one rejects; each proposal is accepted with probability >= 0.65, so a warp
// usually finishes in a few rounds. The element's words come from its own Philox sub-stream,
// so the generator's offset advances by a constant per call (cuda_generator.h) whatever the
// proposals. The backward's quadrature (von_mises_math.h) is 24 or 32 nodes in double.
//
// A parameter that defines no von Mises distribution stops the kernel with a device-side
// assertion naming the argument, as torch's indexing kernels do: a host check would cost a
// synchronization per call. The CPU kernels raise a ValueError instead.
#include <ATen/core/Tensor.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/PhiloxUtils.cuh>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "common/layout2d.h"
#include "common/von_mises_sampler.h"
#include "ops/cuda/cuda_generator.h"
#include "ops/cuda/launch.cuh"
#include "ops/von_mises.h"

namespace gradext::cuda {
namespace {

template <typename scalar_t>
__global__ void von_mises_forward_impl(const scalar_t* __restrict__ loc,
                                       const scalar_t* __restrict__ concentration,
                                       scalar_t* __restrict__ x, Layout2D layout,
                                       int64_t sample_numel, int64_t total,
                                       at::PhiloxCudaState philox) {
  using opmath_t = at::opmath_type<scalar_t>;
  const auto [seed, offset] = at::cuda::philox::unpack(philox);
  const GridStride walk(ThreadIndex::current());
  for (int64_t e = walk.first; e < total; e += walk.stride) {
    const int64_t s = e % sample_numel;
    const auto mu = static_cast<opmath_t>(loc[layout.offset(0, s)]);
    const auto kappa = static_cast<opmath_t>(concentration[layout.offset(1, s)]);
    CUDA_KERNEL_ASSERT(von_mises_sampler::valid_loc(mu) &&
                       "von_mises_rsample: loc must be finite");
    CUDA_KERNEL_ASSERT(von_mises_sampler::valid_concentration(kappa) &&
                       "von_mises_rsample: concentration must be positive and finite");
    x[e] = static_cast<scalar_t>(von_mises_sampler::von_mises_sample<opmath_t>(
        seed, offset, static_cast<uint64_t>(e), mu, kappa));
  }
}

template <typename scalar_t>
__global__ void von_mises_backward_impl(const scalar_t* __restrict__ grad,
                                        const scalar_t* __restrict__ x,
                                        const scalar_t* __restrict__ loc,
                                        const scalar_t* __restrict__ concentration,
                                        scalar_t* __restrict__ grad_concentration,
                                        Layout2D layout, int64_t sample_numel, int64_t total) {
  const GridStride walk(ThreadIndex::current());
  for (int64_t e = walk.first; e < total; e += walk.stride) {
    const int64_t s = e % sample_numel;
    grad_concentration[e] = static_cast<scalar_t>(von_mises_sampler::grad_concentration(
        static_cast<double>(grad[e]), static_cast<double>(x[e]),
        static_cast<double>(loc[layout.offset(0, s)]),
        static_cast<double>(concentration[layout.offset(1, s)])));
  }
}

at::Tensor run_forward(const at::Tensor& loc, const at::Tensor& concentration,
                       std::optional<int64_t> num_samples,
                       const std::optional<at::PhiloxCudaState>& seeded,
                       const std::optional<at::Generator>& generator) {
  c10::cuda::CUDAGuard guard(loc.device());
  const ops::VonMisesForwardProblem p =
      ops::make_von_mises_forward_problem(loc, concentration, num_samples);
  at::Tensor x = at::empty(p.out_shape, p.loc.options());
  const int64_t total = x.numel();
  if (total == 0) return x;
  const at::PhiloxCudaState philox =
      seeded.has_value() ? *seeded : next_philox_state(generator, loc.device().index());
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(),
                                  "von_mises_rsample_forward_cuda", [&] {
    von_mises_forward_impl<scalar_t><<<grid_for(total), kThreads, 0, stream>>>(
        p.loc.const_data_ptr<scalar_t>(), p.concentration.const_data_ptr<scalar_t>(),
        x.mutable_data_ptr<scalar_t>(), p.layout, p.sample_numel, total, philox);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return x;
}

at::Tensor von_mises_rsample_cuda(const at::Tensor& loc, const at::Tensor& concentration,
                                  std::optional<int64_t> num_samples,
                                  std::optional<at::Generator> generator) {
  return run_forward(loc, concentration, num_samples, std::nullopt, generator);
}

at::Tensor von_mises_rsample_seeded_cuda(const at::Tensor& loc, const at::Tensor& concentration,
                                         std::optional<int64_t> num_samples, int64_t seed,
                                         int64_t offset) {
  return run_forward(
      loc, concentration, num_samples,
      at::PhiloxCudaState(static_cast<uint64_t>(seed), static_cast<uint64_t>(offset)),
      std::nullopt);
}

at::Tensor von_mises_rsample_backward_cuda(const at::Tensor& grad, const at::Tensor& x,
                                           const at::Tensor& loc,
                                           const at::Tensor& concentration) {
  c10::cuda::CUDAGuard guard(grad.device());
  const ops::VonMisesBackwardProblem p =
      ops::make_von_mises_backward_problem(grad, x, loc, concentration);
  at::Tensor grad_concentration = at::empty(p.x.sizes(), p.grad.options());
  const int64_t total = p.x.numel();
  if (total == 0) return grad_concentration;
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.grad.scalar_type(),
                                  "von_mises_rsample_backward_cuda", [&] {
    von_mises_backward_impl<scalar_t><<<grid_for(total), kThreads, 0, stream>>>(
        p.grad.const_data_ptr<scalar_t>(), p.x.const_data_ptr<scalar_t>(),
        p.loc.const_data_ptr<scalar_t>(), p.concentration.const_data_ptr<scalar_t>(),
        grad_concentration.mutable_data_ptr<scalar_t>(), p.layout, p.sample_numel, total);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return grad_concentration;
}

}  // namespace
}  // namespace gradext::cuda

TORCH_LIBRARY_IMPL(gradext, CUDA, m) {
  m.impl("von_mises_rsample", &gradext::cuda::von_mises_rsample_cuda);
  m.impl("_von_mises_rsample_seeded", &gradext::cuda::von_mises_rsample_seeded_cuda);
  m.impl("_von_mises_rsample_backward", &gradext::cuda::von_mises_rsample_backward_cuda);
}

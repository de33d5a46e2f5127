// CUDA implementation of the dirichlet_rsample ops: one thread per row (simplex), grid-stride,
// the same per-row code as the CPU kernels (csrc/common/dirichlet_row.h). A thread walks its
// row's entries in order (the log-Gammas are written to log_gamma and read back to normalize),
// which suits the simplices of topic models and Dirichlet VAEs (2 to a few hundred entries);
// rows of thousands would want a block per row, as the relaxed kernels have.
//
// A concentration that is not positive and finite stops the kernel with a device-side
// assertion naming the argument (no host synchronization), as in gamma_kernel.cu.
#include <ATen/core/Tensor.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/PhiloxUtils.cuh>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "common/dirichlet_row.h"
#include "common/layout2d.h"
#include "ops/cuda/cuda_generator.h"
#include "ops/cuda/launch.cuh"
#include "ops/dirichlet.h"

namespace gradext::cuda {
namespace {

template <typename scalar_t>
__global__ void dirichlet_forward_impl(const scalar_t* __restrict__ concentration,
                                       scalar_t* __restrict__ x,
                                       at::opmath_type<scalar_t>* __restrict__ log_gamma,
                                       Layout2D layout, int64_t sample_numel, int64_t categories,
                                       int64_t rows, at::PhiloxCudaState philox) {
  using T = at::opmath_type<scalar_t>;
  const auto [seed, offset] = at::cuda::philox::unpack(philox);
  const GridStride walk(ThreadIndex::current());
  for (int64_t row = walk.first; row < rows; row += walk.stride) {
    const int64_t e0 = row * categories;
    const int64_t s0 = e0 % sample_numel;
    const auto alpha = [&](int64_t i) {
      return static_cast<T>(concentration[layout.offset(0, s0 + i)]);
    };
    const int64_t bad = dirichlet_row::sample<scalar_t, T>(
        seed, offset, static_cast<uint64_t>(e0), categories, alpha, x + e0, log_gamma + e0);
    CUDA_KERNEL_ASSERT(bad < 0 && "dirichlet_rsample: concentration must be positive and finite");
  }
}

template <typename scalar_t, typename log_t>
__global__ void dirichlet_backward_impl(const scalar_t* __restrict__ grad,
                                        const scalar_t* __restrict__ x,
                                        const log_t* __restrict__ log_gamma,
                                        const scalar_t* __restrict__ concentration,
                                        scalar_t* __restrict__ grad_concentration,
                                        Layout2D layout, int64_t sample_numel,
                                        int64_t categories, int64_t rows, double tolerance) {
  const GridStride walk(ThreadIndex::current());
  for (int64_t row = walk.first; row < rows; row += walk.stride) {
    const int64_t e0 = row * categories;
    const int64_t s0 = e0 % sample_numel;
    const auto alpha = [&](int64_t i) { return concentration[layout.offset(0, s0 + i)]; };
    dirichlet_row::backward(grad + e0, x + e0, log_gamma + e0, categories, alpha, tolerance,
                            grad_concentration + e0);
  }
}

std::tuple<at::Tensor, at::Tensor> run_forward(const at::Tensor& concentration,
                                               std::optional<int64_t> num_samples,
                                               const std::optional<at::PhiloxCudaState>& seeded,
                                               const std::optional<at::Generator>& generator) {
  c10::cuda::CUDAGuard guard(concentration.device());
  const ops::DirichletForwardProblem p =
      ops::make_dirichlet_forward_problem(concentration, num_samples);
  const auto options = p.concentration.options().memory_format(at::MemoryFormat::Contiguous);
  at::Tensor x = at::empty(p.out_shape, options);
  at::Tensor log_gamma = at::empty(p.out_shape, options.dtype(p.log_gamma_dtype));
  if (x.numel() == 0) return {x, log_gamma};
  const at::PhiloxCudaState philox =
      seeded.has_value() ? *seeded : next_philox_state(generator, concentration.device().index());
  const int64_t rows = x.numel() / p.categories;
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(),
                                  "dirichlet_rsample_forward_cuda", [&] {
    using T = at::opmath_type<scalar_t>;
    dirichlet_forward_impl<scalar_t><<<grid_for(rows), kThreads, 0, stream>>>(
        p.concentration.const_data_ptr<scalar_t>(), x.mutable_data_ptr<scalar_t>(),
        log_gamma.mutable_data_ptr<T>(), p.layout, p.sample_numel, p.categories, rows, philox);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {x, log_gamma};
}

std::tuple<at::Tensor, at::Tensor> dirichlet_rsample_cuda(const at::Tensor& concentration,
                                                          std::optional<int64_t> num_samples,
                                                          std::optional<at::Generator> generator) {
  return run_forward(concentration, num_samples, std::nullopt, generator);
}

std::tuple<at::Tensor, at::Tensor> dirichlet_rsample_seeded_cuda(
    const at::Tensor& concentration, std::optional<int64_t> num_samples, int64_t seed,
    int64_t offset) {
  return run_forward(
      concentration, num_samples,
      at::PhiloxCudaState(static_cast<uint64_t>(seed), static_cast<uint64_t>(offset)),
      std::nullopt);
}

at::Tensor dirichlet_rsample_backward_cuda(const at::Tensor& grad, const at::Tensor& x,
                                           const at::Tensor& log_gamma,
                                           const at::Tensor& concentration) {
  c10::cuda::CUDAGuard guard(x.device());
  const ops::DirichletBackwardProblem p =
      ops::make_dirichlet_backward_problem(grad, x, log_gamma, concentration);
  at::Tensor grad_concentration = at::empty(p.x.sizes(), p.x.options());
  if (p.x.numel() == 0) return grad_concentration;
  const int64_t rows = p.x.numel() / p.categories;
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.x.scalar_type(),
                                  "dirichlet_rsample_backward_cuda", [&] {
    constexpr double tolerance = gamma_math::tolerance_for<scalar_t>();
    const auto* g = p.grad.const_data_ptr<scalar_t>();
    const auto* xs = p.x.const_data_ptr<scalar_t>();
    const auto* alpha = p.concentration.const_data_ptr<scalar_t>();
    auto* out = grad_concentration.mutable_data_ptr<scalar_t>();
    if (p.log_gamma.scalar_type() == at::kDouble) {
      dirichlet_backward_impl<scalar_t, double><<<grid_for(rows), kThreads, 0, stream>>>(
          g, xs, p.log_gamma.const_data_ptr<double>(), alpha, out, p.layout, p.sample_numel,
          p.categories, rows, tolerance);
    } else {
      dirichlet_backward_impl<scalar_t, float><<<grid_for(rows), kThreads, 0, stream>>>(
          g, xs, p.log_gamma.const_data_ptr<float>(), alpha, out, p.layout, p.sample_numel,
          p.categories, rows, tolerance);
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return grad_concentration;
}

}  // namespace
}  // namespace gradext::cuda

TORCH_LIBRARY_IMPL(gradext, CUDA, m) {
  m.impl("dirichlet_rsample", &gradext::cuda::dirichlet_rsample_cuda);
  m.impl("_dirichlet_rsample_seeded", &gradext::cuda::dirichlet_rsample_seeded_cuda);
  m.impl("_dirichlet_rsample_backward", &gradext::cuda::dirichlet_rsample_backward_cuda);
}

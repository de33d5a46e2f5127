// CUDA implementation of _philox_uniform, the random-number contract's test view (see
// csrc/ops/philox_uniform.cpp): the same uniforms as the CPU, element for element.
#include <ATen/core/Tensor.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "common/philox.h"
#include "common/random_transforms.h"
#include "ops/cuda/launch.cuh"

namespace gradext::cuda {
namespace {

__global__ void philox_uniform_impl(double* __restrict__ out, int64_t numel, uint64_t seed,
                                    uint64_t offset, bool double_grid) {
  const PhiloxStream stream = PhiloxStream::make(seed, offset);
  const GridStride walk(ThreadIndex::current());
  for (int64_t i = walk.first; i < numel; i += walk.stride) {
    const uint32_t bits = philox_word_at(stream, static_cast<uint64_t>(i));
    out[i] = double_grid ? uniform_open(bits, 0.0) : static_cast<double>(uniform_open(bits, 0.0f));
  }
}

at::Tensor philox_uniform_cuda(const at::Tensor& like, int64_t seed, int64_t offset) {
  c10::cuda::CUDAGuard guard(like.device());
  at::Tensor out = at::empty(like.sizes(), like.options().dtype(at::kDouble));
  if (out.numel() == 0) return out;
  philox_uniform_impl<<<grid_for(out.numel()), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
      out.mutable_data_ptr<double>(), out.numel(), static_cast<uint64_t>(seed),
      static_cast<uint64_t>(offset), like.scalar_type() == at::kDouble);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

}  // namespace
}  // namespace gradext::cuda

TORCH_LIBRARY_IMPL(gradext, CUDA, m) {
  m.impl("_philox_uniform", &gradext::cuda::philox_uniform_cuda);
}

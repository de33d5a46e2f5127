// Philox state for the CUDA kernels from torch's CUDA generators.
#pragma once

#include <ATen/cuda/CUDAGeneratorImpl.h>
#include <ATen/core/Generator.h>

#include <mutex>
#include <optional>

namespace gradext::cuda {

// gradext's counter puts the offset in its high 64 bits and the element index in the low ones,
// so one call needs one offset value whatever its size; 4 is the generator's granularity.
// Under CUDA graph capture this returns device pointers that each replay advances, which
// at::cuda::philox::unpack reads inside the kernel.
inline at::PhiloxCudaState next_philox_state(const std::optional<at::Generator>& generator,
                                             c10::DeviceIndex device) {
  auto* gen = at::get_generator_or_default<at::CUDAGeneratorImpl>(
      generator, at::cuda::detail::getDefaultCUDAGenerator(device));
  std::lock_guard<std::mutex> lock(gen->mutex_);
  return gen->philox_cuda_state(4);
}

}  // namespace gradext::cuda

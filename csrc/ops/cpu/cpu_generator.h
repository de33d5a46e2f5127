// Seeds for the CPU kernels from torch's CPU generators: a fresh 64-bit Philox key per call
// (offset 0), drawn under the generator's lock, so torch.manual_seed and generator= reproduce.
#pragma once

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/Generator.h>

#include <mutex>
#include <optional>

namespace gradext::cpu {

inline uint64_t draw_seed(const std::optional<at::Generator>& generator) {
  auto* gen = at::get_generator_or_default<at::CPUGeneratorImpl>(
      generator, at::detail::getDefaultCPUGenerator());
  std::lock_guard<std::mutex> lock(gen->mutex_);
  return gen->random64();
}

}  // namespace gradext::cpu

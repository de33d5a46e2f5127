// Launch helpers shared by the CUDA kernels.
#pragma once

#include <ATen/cuda/CUDAContext.h>

#include <algorithm>
#include <cstdint>

namespace gradext::cuda {

constexpr int kThreads = 256;

// Grid-stride launches: enough blocks of kThreads to fill every SM several times over, no more.
inline int64_t grid_for(int64_t work_items, int threads = kThreads) {
  const int64_t sms = at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
  const int64_t needed = (work_items + threads - 1) / threads;
  return std::max<int64_t>(1, std::min<int64_t>(needed, sms * 16));
}

}  // namespace gradext::cuda

// Launch helpers shared by the CUDA kernels.
#pragma once

#include <ATen/cuda/CUDAContext.h>

#include <algorithm>
#include <cstdint>

#include "ops/cuda/launch_map.h"

namespace gradext::cuda {

// Grid-stride launches: enough blocks to fill every SM several times over, no more
// (launch_map.h has the shapes as plain functions, for the CPU tests).
inline int64_t grid_for(int64_t work_items, int threads = kThreads) {
  return grid_blocks(work_items, threads,
                     at::cuda::getCurrentDeviceProperties()->multiProcessorCount);
}

}  // namespace gradext::cuda

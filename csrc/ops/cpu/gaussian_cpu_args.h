// What the per-ISA CPU Gaussian kernels receive: raw pointers plus the shared layout/RNG state,
// so that the ISA-specific code needs no ATen headers (see gaussian_kernel.cpp). "spread" is the
// log-variance (gaussian_rsample) or the scale (normal_rsample): common/gaussian_spread.h.
#pragma once

#include <cstdint>

#include "common/layout2d.h"
#include "common/philox.h"

namespace gradext::cpu {

// Elements of the sample shape S per tile: the unit of parallel work and of the stack buffers.
constexpr int64_t kGaussianTile = 1024;

struct GaussianForwardArgs {
  const void* mean;    // layout input 0
  const void* spread;  // layout input 1
  void* z;             // contiguous (K, *S)
  Layout2D layout;     // over S
  int64_t sample_numel;
  int64_t total;  // K * numel(S)
  PhiloxStream stream;
};

struct GaussianBackwardArgs {
  const void* grad;    // contiguous (K, *S)
  const void* spread;  // layout input 0
  void* grad_mean;     // contiguous S, or null when not wanted
  void* grad_spread;   // contiguous S
  Layout2D layout;     // over S
  int64_t sample_numel;
  int64_t num_samples;
  PhiloxStream stream;
};

using GaussianForwardTiles = void (*)(const GaussianForwardArgs&, int64_t, int64_t);
using GaussianBackwardTiles = void (*)(const GaussianBackwardArgs&, int64_t, int64_t);

}  // namespace gradext::cpu

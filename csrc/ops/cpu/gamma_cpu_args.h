// What the per-ISA CPU Gamma kernels receive: raw pointers plus the layout and the call's
// (seed, offset), so that the ISA-specific code needs no ATen headers (see gamma_kernel.cpp).
#pragma once

#include <cstdint>

#include "common/layout2d.h"

namespace gradext::cpu {

// Output elements per tile: the unit of the forward's vector pass (one Philox block per element).
constexpr int64_t kGammaTile = 64;

struct GammaForwardArgs {
  const void* concentration;  // layout input 0
  const void* rate;           // layout input 1
  void* z;                    // contiguous (K, *S)
  Layout2D layout;            // over S
  int64_t sample_numel;
  uint64_t seed, offset;
};

struct GammaBackwardArgs {
  const void* grad;           // contiguous, z's shape
  const void* z;              // contiguous
  const void* concentration;  // layout input 0
  const void* rate;           // layout input 1
  void* grad_concentration;   // contiguous, z's shape, or null when not wanted
  void* grad_rate;            // contiguous, z's shape, or null when not wanted
  Layout2D layout;            // over S, the trailing dimensions of z
  int64_t sample_numel;
};

// Each returns the first element of [begin, end) whose parameters define no Gamma distribution
// (its output is NaN), or -1.
using GammaForwardRange = int64_t (*)(const GammaForwardArgs&, int64_t, int64_t);
using GammaBackwardRange = void (*)(const GammaBackwardArgs&, int64_t, int64_t);

}  // namespace gradext::cpu

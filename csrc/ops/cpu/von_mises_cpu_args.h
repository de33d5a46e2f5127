// What the per-ISA CPU von Mises kernels receive: raw pointers plus the layout and the call's
// (seed, offset), so that the ISA-specific code needs no ATen headers (see von_mises_kernel.cpp).
#pragma once

#include <cstdint>

#include "common/layout2d.h"

namespace gradext::cpu {

// Output elements per tile: the unit of the forward's vector pass (one Philox block per element)
// and of the backward's lanes (1 - A, the quadratures).
constexpr int64_t kVonMisesTile = 64;

struct VonMisesForwardArgs {
  const void* loc;            // layout input 0
  const void* concentration;  // layout input 1
  void* x;                    // contiguous (K, *S)
  Layout2D layout;            // over S
  int64_t sample_numel;
  uint64_t seed, offset;
};

struct VonMisesBackwardArgs {
  const void* grad;           // contiguous, x's shape
  const void* x;              // contiguous
  const void* loc;            // layout input 0
  const void* concentration;  // layout input 1
  void* grad_concentration;   // contiguous, x's shape
  Layout2D layout;            // over S, the trailing dimensions of x
  int64_t sample_numel;
};

// The forward returns the first element of [begin, end) whose parameters define no von Mises
// distribution (its output is NaN), or -1.
using VonMisesForwardRange = int64_t (*)(const VonMisesForwardArgs&, int64_t, int64_t);
using VonMisesBackwardRange = void (*)(const VonMisesBackwardArgs&, int64_t, int64_t);

}  // namespace gradext::cpu

// What the per-ISA CPU Dirichlet kernels receive: raw pointers plus the layout and the call's
// (seed, offset), so that the ISA-specific code needs no ATen headers (see dirichlet_kernel.cpp).
#pragma once

#include <cstdint>

#include "common/layout2d.h"

namespace gradext::cpu {

struct DirichletForwardArgs {
  const void* concentration;  // layout input 0, over S
  void* x;                    // contiguous (K, *S)
  void* log_gamma;            // contiguous, the math type (float, or double for double)
  Layout2D layout;
  int64_t sample_numel;
  int64_t categories;
  uint64_t seed, offset;
};

struct DirichletBackwardArgs {
  const void* grad;           // contiguous, x's shape and dtype
  const void* x;              // contiguous
  const void* log_gamma;      // contiguous, the math type (at::opmath_type of x's dtype)
  const void* concentration;  // layout input 0, over S (x's trailing dimensions)
  void* grad_concentration;   // contiguous, x's shape
  Layout2D layout;
  int64_t sample_numel;
  int64_t categories;
};

// Over rows [begin, end): the forward returns the first flat entry whose concentration is not
// positive and finite (its row is NaN), or -1.
using DirichletForwardRows = int64_t (*)(const DirichletForwardArgs&, int64_t, int64_t);
using DirichletBackwardRows = void (*)(const DirichletBackwardArgs&, int64_t, int64_t);

}  // namespace gradext::cpu

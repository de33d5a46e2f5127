// The two parameter constraints of torch.distributions that gradext checks in one fused pass
// (csrc/ops/parameter_check.cpp), per element, for the CPU and CUDA kernels alike:
//
//   * real (constraints.real, and real_vector elementwise): x == x, i.e. not NaN; +-inf pass,
//     as in torch's check;
//   * positive (constraints.positive, a GreaterThan(0.0)): 0 < x; NaN, 0 and -0.0 fail.
#pragma once

#include "macros.h"

namespace gradext {

template <typename T>
GRADEXT_INLINE bool satisfies_constraint(T x, bool positive) {
  return positive ? T(0) < x : x == x;
}

}  // namespace gradext

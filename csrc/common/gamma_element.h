// One element of gamma_rsample, forward and backward, as the CPU and CUDA kernels both call it:
// the parameter check, the clamped sample and the gradients. Host and device.
#pragma once

#include <cstdint>
#include <limits>

#include "gamma_math.h"
#include "gamma_sampler.h"
#include "macros.h"
#include "sample_range.h"

namespace gradext::gamma_sampler {

// Whether (concentration, rate) define a Gamma distribution: both positive and finite (false
// for NaN).
template <typename T>
GRADEXT_INLINE bool valid_parameter(T x) {
  return x > T(0) && x <= std::numeric_limits<T>::max();
}

// Element `element` of a gamma_rsample call keyed by (seed, offset): a Gamma(alpha, rate) sample
// in the math type T, clamped into scalar_t's positive normal range (sample_range.h), so that
// the stored value is never 0 or inf. alpha and rate must be valid (valid_parameter).
template <typename scalar_t, typename T>
GRADEXT_INLINE T gamma_sample(uint64_t seed, uint64_t offset, uint64_t element, T alpha, T rate) {
  PhiloxSubstream words(seed, offset, element);
  return clamp_positive<scalar_t>(standard_gamma(words, alpha) / rate);
}

// The backward's two factors at one element, in double whatever the dtype: grad * dz/dalpha
// (implicit, read from the saved sample z; the expansions stop at scalar_t's resolution) and
// grad * dz/drate = -grad * z / rate.
template <typename scalar_t>
GRADEXT_INLINE double grad_concentration(double grad, double z, double alpha, double rate) {
  constexpr double tolerance = gamma_math::tolerance_for<scalar_t>();
  return grad * gamma_math::gamma_dz_dconcentration(alpha, rate, z, tolerance);
}

GRADEXT_INLINE double grad_rate(double grad, double z, double rate) { return -grad * z / rate; }

}  // namespace gradext::gamma_sampler

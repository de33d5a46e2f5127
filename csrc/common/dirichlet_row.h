// One row (one simplex) of dirichlet_rsample, forward and backward, as the CPU and CUDA kernels
// both call it. Host and device.
//
// Forward: g_i ~ Gamma(alpha_i, 1) for the row's entries, entry e (flat output element) from
// Philox sub-stream e, kept as log g_i (gamma_sampler.h: log_standard_gamma, which does not
// underflow: most of Gamma(1e-3) lies below the smallest double), then x_i = g_i / sum_j g_j =
// exp(log g_i - m) / sum_j exp(log g_j - m), m = max_j log g_j. Entries that round below the
// output dtype's smallest positive value are set to it: never 0, and the sum stays 1 within
// rounding.
//
// Backward: with D_i = d log g_i / d alpha_i (gamma_math.h: standard_gamma_dlog_dalpha) and
// dx_j / dlog g_i = x_j (delta_ij - x_i),
//   grad_alpha_i = sum_j grad_j dx_j / dalpha_i = x_i (grad_i - sum_j grad_j x_j) D_i,
// in double.
#pragma once

#include <cstdint>

#include "gamma_element.h"
#include "gamma_math.h"
#include "gamma_sampler.h"
#include "macros.h"
#include "philox.h"
#include "sample_range.h"
#include "scalar_math.h"

namespace gradext::dirichlet_row {

// Samples one row of `categories` entries, the first being flat output element
// `first_element`; alpha(i) gives entry i's concentration (math type T). Writes x (scalar_t)
// and log_gamma (T). Returns the first entry whose concentration is not positive and finite (its
// row is then NaN), or -1.
template <typename scalar_t, typename T, typename Alpha>
GRADEXT_INLINE int64_t sample(uint64_t seed, uint64_t offset, uint64_t first_element,
                              int64_t categories, const Alpha& alpha, scalar_t* x,
                              T* log_gamma) {
  int64_t invalid = -1;
  T m = T(0);
  for (int64_t i = 0; i < categories; ++i) {
    const T a = alpha(i);
    if (!gamma_sampler::valid_parameter(a)) {
      if (invalid < 0) invalid = i;
      log_gamma[i] = T(0);
      continue;
    }
    PhiloxSubstream words(seed, offset, first_element + static_cast<uint64_t>(i));
    const T l = gamma_sampler::log_standard_gamma(words, a);
    log_gamma[i] = l;
    m = (i == 0 || l > m) ? l : m;
  }
  if (invalid >= 0) {
    for (int64_t i = 0; i < categories; ++i) x[i] = static_cast<scalar_t>(NAN);
    return invalid;
  }
  T sum = T(0);
  for (int64_t i = 0; i < categories; ++i) sum += math::exp(log_gamma[i] - m);
  const T inv_sum = T(1) / sum;
  for (int64_t i = 0; i < categories; ++i) {
    const T value = math::exp(log_gamma[i] - m) * inv_sum;
    x[i] = static_cast<scalar_t>(clamp_open_unit<scalar_t>(value));
  }
  return -1;
}

// The backward of one row: grad_alpha[i] for i < categories (scalar_t), from the row's grad, x
// and log_gamma; tolerance: gamma_math's for the output dtype.
template <typename scalar_t, typename LogGamma, typename Alpha>
GRADEXT_INLINE void backward(const scalar_t* grad, const scalar_t* x, const LogGamma* log_gamma,
                             int64_t categories, const Alpha& alpha, double tolerance,
                             scalar_t* grad_alpha) {
  double dot = 0.0;
  for (int64_t j = 0; j < categories; ++j) {
    dot += static_cast<double>(grad[j]) * static_cast<double>(x[j]);
  }
  for (int64_t i = 0; i < categories; ++i) {
    const double d_log =
        gamma_math::standard_gamma_dlog_dalpha(static_cast<double>(alpha(i)),
                                               static_cast<double>(log_gamma[i]), tolerance);
    const double xi = static_cast<double>(x[i]);
    grad_alpha[i] = static_cast<scalar_t>(xi * (static_cast<double>(grad[i]) - dot) * d_log);
  }
}

}  // namespace gradext::dirichlet_row

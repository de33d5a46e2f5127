// What the discrete and relaxed samples are for inputs that define no distribution, written once
// for the CPU and CUDA kernels (the fallback in gradext/reference follows the same rules):
//
//   * a row of logits with a NaN, a +inf, or no finite value (every category masked with -inf)
//     has no softmax: its soft sample is NaN (as torch.softmax's), its hard sample is NaN in
//     every position (as F.gumbel_softmax's), and categorical_sample returns index 0 with a NaN
//     log_prob (an index cannot be NaN; the log_prob carries the NaN into the loss and the
//     gradient);
//   * a Bernoulli score logits + L that is NaN gives a NaN hard sample, never 0.
//
// Masked categories (-inf) in a row with a finite logit are fine: probability 0, never sampled.
#pragma once

#include <cmath>

#include "macros.h"

namespace gradext {

// The row of a softmax over s = logits + g is valid iff sum_c exp((s_c - max s) / tau) >= 1: the
// maximum's own term is exp(0) = 1 and the others are >= 0. The kernels' sums are NaN (a NaN
// term, or inf - inf at a +inf or all--inf row) or 0 (the CUDA online sum skips -inf) otherwise.
template <typename T>
GRADEXT_INLINE bool softmax_row_is_valid(T sum_of_exp) {
  return sum_of_exp >= T(1);
}

// A log-normalizer logsumexp(logits) is finite iff the row is valid (see above).
template <typename T>
GRADEXT_INLINE bool log_normalizer_is_valid(T lse) {
  return lse - lse == T(0);  // false for NaN and +-inf
}

// The hard Bernoulli sample 1[s > 0] of a score s = logits + L, NaN when s is NaN.
template <typename T>
GRADEXT_INLINE T bernoulli_of_score(T s) {
  return s > T(0) ? T(1) : (s == s ? T(0) : s);
}

template <typename T>
GRADEXT_INLINE T quiet_nan() {
  return static_cast<T>(NAN);
}

}  // namespace gradext

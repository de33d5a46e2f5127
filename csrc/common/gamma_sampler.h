// Standard Gamma(alpha, 1) samples on Philox sub-streams (philox.h: PhiloxSubstream), host and
// device. Marsaglia and Tsang (2000): with d = alpha - 1/3 and c = 1 / sqrt(9 d), propose
// v = (1 + c x)^3 from a standard normal x and accept d v with a uniform u when
// u < 1 - 0.0331 x^4 (the squeeze) or log u < x^2 / 2 + d (1 - v + log v). Acceptance is at
// least 0.95 per proposal for alpha >= 1. For alpha < 1 the sample is G(alpha + 1) * u^(1/alpha)
// (Marsaglia and Tsang's boost), formed in log space, log z = log G + log(u) / alpha, so that a
// tiny alpha underflows only at the final exp, where it is clamped to the type's smallest
// normal: a sample is never 0 (half of Gamma(1e-3) lies below 1e-301).
//
// T is the math type (float for float32 and the half types, double for float64), with
// gradext's own float transcendentals (scalar_math.h), so a float sample, accept/reject
// decisions included, is bitwise the same on every CPU ISA and on the GPU.
#pragma once

#include <cstdint>
#include <limits>

#include "macros.h"
#include "philox.h"
#include "random_transforms.h"
#include "scalar_math.h"

namespace gradext::gamma_sampler {

// Proposals per sample at most. Each is accepted with probability >= 0.95, so the cap is met
// with probability below 0.05^64 = 5e-84; a capped element returns d, the proposal density's
// centre.
constexpr int kMaxProposals = 64;

// A standard Gamma(alpha, 1) sample for alpha >= 1.
template <typename T>
GRADEXT_INLINE T standard_gamma_at_least_one(PhiloxSubstream& words, T alpha) {
  const T d = alpha - T(1) / T(3);
  const T c = T(1) / math::sqrt(T(9) * d);
  T spare = T(0);
  bool have_spare = false;
  for (int proposal = 0; proposal < kMaxProposals; ++proposal) {
    T x;
    if (have_spare) {
      x = spare;
      have_spare = false;
    } else {
      const uint32_t radius_bits = words.next();
      const uint32_t angle_bits = words.next();
      box_muller<T>(radius_bits, angle_bits, &x, &spare);
      have_spare = true;
    }
    T v = T(1) + c * x;
    if (v <= T(0)) continue;
    v = v * v * v;
    const T u = uniform_open(words.next(), T(0));
    const T x2 = x * x;
    if (u < T(1) - T(0.0331) * x2 * x2) return d * v;
    // math::log: v can be as small as a subnormal (1 + c x rounds near 0 at most once in ~1e13)
    if (math::log_positive(u) < T(0.5) * x2 + d * (T(1) - v + math::log(v))) {
      return d * v;
    }
  }
  return d;
}

// A standard Gamma(alpha, 1) sample, alpha > 0: never 0, never NaN, finite.
template <typename T>
GRADEXT_INLINE T standard_gamma(PhiloxSubstream& words, T alpha) {
  if (alpha >= T(1)) return standard_gamma_at_least_one(words, alpha);
  const T boosted = standard_gamma_at_least_one(words, alpha + T(1));
  const T u = uniform_open(words.next(), T(0));
  const T log_z = math::log(boosted) + math::log_positive(u) / alpha;
  const T z = math::exp(log_z);
  return z < std::numeric_limits<T>::min() ? std::numeric_limits<T>::min() : z;
}

// log of a standard Gamma(alpha, 1) sample, alpha > 0, without underflow: the same words and
// operations as standard_gamma up to the boost's final exp (so exp of it is standard_gamma's
// value wherever that does not underflow). Most of Gamma(1e-3) lies below the smallest double;
// its logs are ordinary numbers (the Dirichlet sampler normalizes in log space).
template <typename T>
GRADEXT_INLINE T log_standard_gamma(PhiloxSubstream& words, T alpha) {
  if (alpha >= T(1)) return math::log(standard_gamma_at_least_one(words, alpha));
  const T boosted = standard_gamma_at_least_one(words, alpha + T(1));
  const T u = uniform_open(words.next(), T(0));
  return math::log(boosted) + math::log_positive(u) / alpha;
}

}  // namespace gradext::gamma_sampler

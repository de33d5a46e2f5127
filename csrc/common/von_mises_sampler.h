// von Mises samples on Philox sub-streams (philox.h: PhiloxSubstream), host and device, and one
// element of von_mises_rsample, forward and backward, as the CPU and CUDA kernels both call it.
//
// Best and Fisher (1979): with rho = (tau - sqrt(2 tau)) / (2 kappa), tau = 1 + sqrt(1 + 4
// kappa^2), and r = (1 + rho^2) / (2 rho), propose z = cos(pi u1) (a wrapped Cauchy angle after
// the map f = (1 + r z) / (r + z)), set c = kappa (r - f) and accept with a second uniform u2
// when c (2 - c) > u2 or log(c / u2) + 1 - c >= 0; the angle is acos(f) with a random sign.
// Acceptance is at least 0.65 per proposal at every kappa.
//
// Written so that no step subtracts nearly equal numbers at any kappa (the textbook form loses
// every digit of rho for kappa < 1e-4 and of acos(f) for kappa > 1e4 in float):
//   rho = 2 kappa / (tau + sqrt(2 tau))            (rationalized; no tau - sqrt(2 tau))
//   1 - rho = (1 + 1 / (s + 2 kappa) + sqrt(2 tau)) / (tau + sqrt(2 tau)),  s = sqrt(1 + 4 kappa^2)
//   r - 1 = (1 - rho)^2 / (2 rho),   r + 1 = (1 + rho)^2 / (2 rho)
//   with sh, ch = sin, cos(pi u1 / 2):  1 - z = 2 sh^2, 1 + z = 2 ch^2, r + z = (r - 1) + 2 ch^2,
//   h = (1 - f) / 2 = (r - 1) sh^2 / (r + z),  g = (1 + f) / 2 = (r + 1) ch^2 / (r + z)
//   c = kappa ((r - 1) + 2 h),  |angle| = 2 atan(sqrt(h / g)) (or pi - 2 atan(sqrt(g / h)))
// since h = sin^2(angle / 2) and g = cos^2(angle / 2). The concentration is clamped to
// [1e-30, 1e30] for the proposal only: below, the law is uniform to 1e-30; above, the angle's
// standard deviation (1e-15) is below float resolution anywhere but at 0. The gradient uses
// the concentration as given.
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
#include "von_mises_math.h"

namespace gradext::von_mises_sampler {

// Proposals per sample at most: each is accepted with probability >= 0.65, so the cap is met
// with probability below 0.35^64 = 1e-29; a capped element returns loc, the mode.
constexpr int kMaxProposals = 64;

template <typename T>
struct Constants {
  GRADEXT_INLINE static T pi() { return T(3.14159265358979323846); }
  GRADEXT_INLINE static T two_pi() { return T(6.28318530717958647692); }
};

// Whether loc is a usable location (finite) and kappa a concentration (positive and finite;
// false for NaN).
template <typename T>
GRADEXT_INLINE bool valid_loc(T loc) {
  return loc >= -std::numeric_limits<T>::max() && loc <= std::numeric_limits<T>::max();
}

template <typename T>
GRADEXT_INLINE bool valid_concentration(T kappa) {
  return kappa > T(0) && kappa <= std::numeric_limits<T>::max();
}

// The proposal's constants for one concentration.
template <typename T>
struct Proposal {
  T kappa;        // clamped to [1e-30, 1e30]
  T r_minus_one;  // r - 1
  T r_plus_one;   // r + 1

  GRADEXT_INLINE explicit Proposal(T concentration) {
    const T lo = T(1e-30), hi = T(1e30);
    kappa = concentration < lo ? lo : (concentration > hi ? hi : concentration);
    // s = sqrt(1 + 4 kappa^2), without forming 4 kappa^2 where it could overflow
    const T s = kappa < T(1) ? math::sqrt(T(1) + T(4) * kappa * kappa)
                             : T(2) * kappa * math::sqrt(T(1) + T(0.25) / (kappa * kappa));
    const T tau = T(1) + s;
    const T root = math::sqrt(T(2) * tau);
    const T denominator = tau + root;
    const T rho = T(2) * kappa / denominator;
    const T one_minus_rho = (T(1) + T(1) / (s + T(2) * kappa) + root) / denominator;
    r_minus_one = one_minus_rho * one_minus_rho / (T(2) * rho);
    r_plus_one = (T(1) + rho) * (T(1) + rho) / (T(2) * rho);
  }
};

// One proposal from two words: whether it is accepted, and the angle's magnitude (meaningful
// where accepted). Branch-free (both acceptance tests are evaluated), so that the CPU kernels
// can run the first proposal of many elements in vector lanes with these very operations.
template <typename T>
GRADEXT_INLINE bool try_proposal(const Proposal<T>& p, uint32_t u1_bits, uint32_t u2_bits,
                                 T* magnitude) {
  const T u1 = uniform_open(u1_bits, T(0));
  T sh, ch;
  math::sincos_2pi(u1 * T(0.25), &sh, &ch);  // sin, cos of pi u1 / 2; the scaling is exact
  const T sh2 = sh * sh, ch2 = ch * ch;
  const T r_plus_z = p.r_minus_one + T(2) * ch2;
  const T h = p.r_minus_one * sh2 / r_plus_z;
  const T g = p.r_plus_one * ch2 / r_plus_z;
  const T c = p.kappa * (p.r_minus_one + T(2) * h);
  const T u2 = uniform_open(u2_bits, T(0));
  const bool squeeze = c * (T(2) - c) > u2;
  const bool full = math::log(c) - math::log_positive(u2) + T(1) - c >= T(0);
  const bool lower = h <= g;
  const T ratio = math::sqrt(lower ? h / g : g / h);
  const T atan_ratio = math::atan_unit(ratio);
  const T half_angle = lower ? atan_ratio : Constants<T>::pi() * T(0.5) - atan_ratio;
  *magnitude = T(2) * half_angle;
  return squeeze | full;
}

// The sign word's verdict: the angle is negated when its top bit is set.
template <typename T>
GRADEXT_INLINE T signed_angle(uint32_t sign_bits, T magnitude) {
  return (sign_bits >> 31) != 0u ? -magnitude : magnitude;
}

// The offset of a von Mises(0, kappa) sample from its location, in [-pi, pi]. Each proposal
// reads two words; the accepted one's sign reads the next.
template <typename T>
GRADEXT_INLINE T angle_offset(PhiloxSubstream& words, T concentration) {
  const Proposal<T> p(concentration);
  for (int proposal = 0; proposal < kMaxProposals; ++proposal) {
    const uint32_t u1_bits = words.next();
    const uint32_t u2_bits = words.next();
    T magnitude;
    if (try_proposal(p, u1_bits, u2_bits, &magnitude)) return signed_angle(words.next(), magnitude);
  }
  return T(0);
}

// x wrapped into [-pi, pi) (pi as rounded in T). Selects only, for the vector lanes.
template <typename T>
GRADEXT_INLINE T wrap_angle(T x) {
  const T pi = Constants<T>::pi(), two_pi = Constants<T>::two_pi();
  T w = x - two_pi * math::floor((x + pi) / two_pi);
  w = w < -pi ? w + two_pi : w;
  w = w >= pi ? w - two_pi : w;
  return x >= -pi && x < pi ? x : w;  // inside already: x itself, unrounded
}

// Element `element` of a von_mises_rsample call keyed by (seed, offset), in the math type T:
// loc plus the offset, wrapped into [-pi, pi). loc and kappa must be valid.
template <typename T>
GRADEXT_INLINE T von_mises_sample(uint64_t seed, uint64_t offset, uint64_t element, T loc,
                                  T concentration) {
  PhiloxSubstream words(seed, offset, element);
  return wrap_angle(loc + angle_offset(words, concentration));
}

// The offset of a saved sample from loc, wrapped into [-pi, pi], in double: what the gradient
// is evaluated at (it vanishes at +-pi, so the wrap's ambiguity there does not matter).
GRADEXT_INLINE double offset_from_loc(double sample, double loc) {
  constexpr double pi = von_mises_math::kPi;
  const double delta = sample - loc;
  if (delta >= -pi && delta <= pi) return delta;
  return delta - 2.0 * pi * ::floor((delta + pi) / (2.0 * pi));
}

// The backward at one element, in double whatever the dtype: grad * d sample / d concentration,
// the implicit gradient at the saved sample. (d sample / d loc = 1.)
GRADEXT_INLINE double grad_concentration(double grad, double sample, double loc, double kappa) {
  return grad * von_mises_math::von_mises_ddelta_dkappa(kappa, offset_from_loc(sample, loc));
}

}  // namespace gradext::von_mises_sampler

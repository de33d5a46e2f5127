// From Philox words to distributions. Every transform keeps its uniforms strictly inside (0, 1),
// so the logs below never see 0 and no noise value is ever NaN or inf.
#pragma once

#include <cstdint>

#include "macros.h"
#include "philox.h"
#include "scalar_math.h"

namespace gradext {

// Uniform on the odd multiples of 2^-24: 2^-24 <= u <= 1 - 2^-24, all exactly representable in
// float, symmetric about 1/2 (23 random bits).
GRADEXT_INLINE float uniform_open(uint32_t bits, float /*tag*/) {
  // Through int32 (the value is below 2^24): x86 before AVX-512 has no vector unsigned->float
  // conversion, and GCC's emulation of one costs more than the rest of the transform.
  const int32_t odd = static_cast<int32_t>((bits >> 8) | 1u);
  return static_cast<float>(odd) * 5.9604644775390625e-8f;  // 2^-24
}

// Uniform on (k + 1/2) * 2^-32, k = 0 .. 2^32 - 1: 2^-33 <= u <= 1 - 2^-33, exact in double.
GRADEXT_INLINE double uniform_open(uint32_t bits, double /*tag*/) {
  return (static_cast<double>(bits) + 0.5) * 2.3283064365386962890625e-10;  // 2^-32
}

// Box-Muller: two uniforms -> two independent standard normals. The radius's uniform is at
// least 2^-24 (float) / 2^-33 (double), so |n| <= 5.77 / 6.76: the float tail beyond 5.77 sigma
// (probability 8e-9) is not represented.
template <typename T>
GRADEXT_INLINE T box_muller_radius(uint32_t bits_radius) {
  return math::sqrt(T(-2) * math::log_positive(uniform_open(bits_radius, T(0))));
}

template <typename T>
GRADEXT_INLINE void box_muller_angle(uint32_t bits_angle, T* s, T* c) {
  math::sincos_2pi(uniform_open(bits_angle, T(0)), s, c);
}

template <typename T>
GRADEXT_INLINE void box_muller(uint32_t bits_radius, uint32_t bits_angle, T* n0, T* n1) {
  const T radius = box_muller_radius<T>(bits_radius);
  T s, c;
  box_muller_angle<T>(bits_angle, &s, &c);
  *n0 = radius * c;
  *n1 = radius * s;
}

// The four standard normals of counter block `block`: elements 4*block .. 4*block + 3.
template <typename T>
GRADEXT_INLINE void normal4(const PhiloxStream& stream, uint64_t block, T out[4]) {
  const Philox4x32 r = stream.block(block);
  box_muller(r.x, r.y, &out[0], &out[1]);
  box_muller(r.z, r.w, &out[2], &out[3]);
}

// The standard normal of one element index (used where a thread's elements are not
// block-aligned; computes the whole pair and keeps one value).
template <typename T>
GRADEXT_INLINE T normal_at(const PhiloxStream& stream, uint64_t index) {
  const Philox4x32 r = stream.block(index >> 2);
  const bool second_pair = (index & 2) != 0;
  T n0, n1;
  box_muller(second_pair ? r.z : r.x, second_pair ? r.w : r.y, &n0, &n1);
  return (index & 1) != 0 ? n1 : n0;
}

}  // namespace gradext

namespace gradext {

// Standard exponential e = -log u, and the Gumbel variable -log e: the two halves of gumbel(),
// kept apart so that CPU loops can evaluate one log per loop body.
//
// u is the 32-bit uniform (w + 1/2) 2^-32 in both precisions, and e keeps its resolution where
// the Gumbel-max trick needs it: the smallest e (u near 1) are the largest g, which decide
// whether a category of tiny probability wins. In float, u near 1 is not representable finely
// enough (a float uniform has 24 bits there: e >= 2^-24 in steps of 2^-23, g <= 16.6, and
// categories of probability 1e-8 came out 27% too rare), so the upper half u >= 1/2 is
// computed as e = -log1p(-v) of its complement v = 1 - u = (2^32 - 1 - w + 1/2) 2^-32, which
// float holds to 24 bits relative down to v = 2^-33: e in [2^-33, 22.9], g in [-3.13, 22.9],
// the same grid as the double transform's. log1p(-v) = log(y) * -v / (y - 1) with y = 1 - v
// (y - 1 exact), and -v itself where y rounds to 1 (Goldberg's construction; one log either
// way, selected branch-free so the CPU loops stay vectorized).
template <typename T>
GRADEXT_INLINE T exponential(uint32_t bits) {
  return -math::log_positive(uniform_open(bits, T(0)));
}

template <>
GRADEXT_INLINE float exponential<float>(uint32_t bits) {
  const bool upper = bits >= 0x80000000u;  // u >= 1/2
  // w for the lower half, 2^32 - 1 - w for the upper: below 2^31, so exact through int32 (see
  // uniform_open for why not uint32 -> float).
  const int32_t k = static_cast<int32_t>(upper ? ~bits : bits);
  const float x = (static_cast<float>(k) + 0.5f) * 2.3283064365386962890625e-10f;  // u or v
  const float y = 1.0f - x;  // the upper half's u, rounded; y - 1 is exact
  const float log_arg = math::log_positive(upper ? y : x);
  const float upper_e = y == 1.0f ? x : log_arg * (x / (y - 1.0f));
  return upper ? upper_e : -log_arg;
}

template <typename T>
GRADEXT_INLINE T gumbel_of_exponential(T e) {
  return -math::log_positive(e);
}

// Standard Gumbel: g = -log(-log u), in [-3.13, 22.9] in float and double alike (the 32-bit
// uniform, see exponential): finite, never NaN.
template <typename T>
GRADEXT_INLINE T gumbel(uint32_t bits) {
  return gumbel_of_exponential(exponential<T>(bits));
}

// Standard logistic: log u - log(1 - u) (1 - u is exact on both uniform grids).
template <typename T>
GRADEXT_INLINE T logistic(uint32_t bits) {
  const T u = uniform_open(bits, T(0));
  return math::log_positive(u) - math::log_positive(T(1) - u);
}

// The noise of one element index for an elementwise transform of one 32-bit word.
GRADEXT_INLINE uint32_t philox_word_at(const PhiloxStream& stream, uint64_t index) {
  const Philox4x32 r = stream.block(index >> 2);
  const uint32_t lane = static_cast<uint32_t>(index & 3);
  return lane == 0 ? r.x : lane == 1 ? r.y : lane == 2 ? r.z : r.w;
}

}  // namespace gradext

// The positive normal range of each output dtype, as values of the math type: where a sampler of
// a positive distribution clamps its result so that the stored sample is never 0 (an underflow)
// or inf (an overflow) once rounded to the output dtype. Host and device.
#pragma once

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <cfloat>

#include "macros.h"

namespace gradext {

template <typename scalar_t>
struct PositiveRange;

// smallest(): the smallest normal; tiniest(): the smallest positive (subnormal) value;
// below_one(): the largest value below 1 (1 - eps / 2).
template <>
struct PositiveRange<float> {
  GRADEXT_INLINE static float smallest() { return FLT_MIN; }
  GRADEXT_INLINE static float tiniest() { return 1.40129846e-45f; }  // 2^-149
  GRADEXT_INLINE static float largest() { return FLT_MAX; }
  GRADEXT_INLINE static float below_one() { return 0.99999994039535522f; }  // 1 - 2^-24
};

template <>
struct PositiveRange<double> {
  GRADEXT_INLINE static double smallest() { return DBL_MIN; }
  GRADEXT_INLINE static double tiniest() { return 4.9406564584124654e-324; }  // 2^-1074
  GRADEXT_INLINE static double largest() { return DBL_MAX; }
  GRADEXT_INLINE static double below_one() { return 0.99999999999999989; }  // 1 - 2^-53
};

template <>
struct PositiveRange<c10::Half> {  // computed in float
  GRADEXT_INLINE static float smallest() { return 6.103515625e-05f; }  // 2^-14
  GRADEXT_INLINE static float tiniest() { return 5.9604644775390625e-08f; }  // 2^-24
  GRADEXT_INLINE static float largest() { return 65504.0f; }
  GRADEXT_INLINE static float below_one() { return 0.99951171875f; }  // 1 - 2^-11
};

template <>
struct PositiveRange<c10::BFloat16> {  // computed in float; FLT_MAX would round up to inf
  GRADEXT_INLINE static float smallest() { return FLT_MIN; }
  GRADEXT_INLINE static float tiniest() { return 9.18354961e-41f; }  // 2^-133
  GRADEXT_INLINE static float largest() { return 3.3895313892515355e38f; }  // 0x7f7f
  GRADEXT_INLINE static float below_one() { return 0.99609375f; }  // 1 - 2^-8
};

// x clamped into the positive normal range of scalar_t (NaN stays NaN).
template <typename scalar_t, typename T>
GRADEXT_INLINE T clamp_positive(T x) {
  const T lo = static_cast<T>(PositiveRange<scalar_t>::smallest());
  const T hi = static_cast<T>(PositiveRange<scalar_t>::largest());
  return x < lo ? lo : (x > hi ? hi : x);
}

// A simplex coordinate x clamped into the open interval (0, 1) as scalar_t holds it: at least
// its smallest positive value, at most its largest value below 1 (NaN stays NaN). With tiny
// concentrations most of the mass sits within rounding of 0 and 1; exact 0s and 1s would make
// Beta and Dirichlet log-densities infinite. torch's sampler clamps the same way.
template <typename scalar_t, typename T>
GRADEXT_INLINE T clamp_open_unit(T x) {
  const T lo = static_cast<T>(PositiveRange<scalar_t>::tiniest());
  const T hi = static_cast<T>(PositiveRange<scalar_t>::below_one());
  return x < lo ? lo : (x > hi ? hi : x);
}

}  // namespace gradext

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

// smallest(): the smallest normal; tiniest(): the smallest positive (subnormal) value.
template <>
struct PositiveRange<float> {
  GRADEXT_INLINE static float smallest() { return FLT_MIN; }
  GRADEXT_INLINE static float tiniest() { return 1.40129846e-45f; }  // 2^-149
  GRADEXT_INLINE static float largest() { return FLT_MAX; }
};

template <>
struct PositiveRange<double> {
  GRADEXT_INLINE static double smallest() { return DBL_MIN; }
  GRADEXT_INLINE static double tiniest() { return 4.9406564584124654e-324; }  // 2^-1074
  GRADEXT_INLINE static double largest() { return DBL_MAX; }
};

template <>
struct PositiveRange<c10::Half> {  // computed in float
  GRADEXT_INLINE static float smallest() { return 6.103515625e-05f; }  // 2^-14
  GRADEXT_INLINE static float tiniest() { return 5.9604644775390625e-08f; }  // 2^-24
  GRADEXT_INLINE static float largest() { return 65504.0f; }
};

template <>
struct PositiveRange<c10::BFloat16> {  // computed in float; FLT_MAX would round up to inf
  GRADEXT_INLINE static float smallest() { return FLT_MIN; }
  GRADEXT_INLINE static float tiniest() { return 9.18354961e-41f; }  // 2^-133
  GRADEXT_INLINE static float largest() { return 3.3895313892515355e38f; }  // 0x7f7f
};

// x clamped into the positive normal range of scalar_t (NaN stays NaN).
template <typename scalar_t, typename T>
GRADEXT_INLINE T clamp_positive(T x) {
  const T lo = static_cast<T>(PositiveRange<scalar_t>::smallest());
  const T hi = static_cast<T>(PositiveRange<scalar_t>::largest());
  return x < lo ? lo : (x > hi ? hi : x);
}

}  // namespace gradext

// Elementary functions for the kernels, identical on host and device.
//
// float: branch-free polynomial versions (Cephes coefficients, about 1 ulp on the ranges used)
// built from +, *, comparisons and bit casts only. Two reasons:
//   * GCC vectorizes them inside the per-ISA CPU loops, where calls to libm's logf/expf would
//     stay scalar (docs/design.md: the CPU kernels are compute-bound on the transcendentals);
//   * with FP contraction disabled in both builds (-ffp-contract=off, nvcc --fmad=false) the CPU
//     and the GPU evaluate the same operations in the same order, so float noise is bitwise
//     identical across devices, CPU ISAs and thread counts.
// double: the platform's correctly-rounded-or-close libm (host) or CUDA's double intrinsics,
// except the *_vectorizable functions, written like the float ones for double loops that the
// CPU kernels vectorize (the von Mises sampler's, the implicit Gamma gradient's).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "macros.h"

namespace gradext {
namespace math {

GRADEXT_INLINE float bits_to_float(uint32_t bits) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(bits);
#else
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
#endif
}

GRADEXT_INLINE uint32_t float_to_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  return bits;
#endif
}

GRADEXT_INLINE uint64_t double_to_bits(double x) {
#if defined(__CUDA_ARCH__)
  return static_cast<uint64_t>(__double_as_longlong(x));
#else
  uint64_t bits;
  std::memcpy(&bits, &x, sizeof(bits));
  return bits;
#endif
}

GRADEXT_INLINE double bits_to_double(uint64_t bits) {
#if defined(__CUDA_ARCH__)
  return __longlong_as_double(static_cast<long long>(bits));
#else
  double x;
  std::memcpy(&x, &bits, sizeof(x));
  return x;
#endif
}

// Round to nearest integer (ties to even) for |x| < 2^22, without libm: adding 1.5 * 2^23 pushes
// the fraction bits out of the significand.
GRADEXT_INLINE float round_small(float x) {
  constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23
  return (x + kMagic) - kMagic;
}

// Natural log for positive, normal x (the kernels call it on uniforms in [2^-24, 1)).
GRADEXT_INLINE float log_positive(float x) {
  const uint32_t bits = float_to_bits(x);
  float e = static_cast<float>(static_cast<int32_t>(bits >> 23) - 126);  // x = m * 2^e
  float m = bits_to_float((bits & 0x007fffffu) | 0x3f000000u);           // m in [0.5, 1)
  const bool small = m < 0.70710678118654752f;
  e = small ? e - 1.0f : e;
  m = small ? (m + m) - 1.0f : m - 1.0f;  // m in [sqrt(1/2) - 1, sqrt(2) - 1)
  const float z = m * m;
  float y = 7.0376836292e-2f;
  y = y * m - 1.1514610310e-1f;
  y = y * m + 1.1676998740e-1f;
  y = y * m - 1.2420140846e-1f;
  y = y * m + 1.4249322787e-1f;
  y = y * m - 1.6668057665e-1f;
  y = y * m + 2.0000714765e-1f;
  y = y * m - 2.4999993993e-1f;
  y = y * m + 3.3333331174e-1f;
  y = y * m * z;
  y = y + -2.12194440e-4f * e;  // ln(2) split in two for Cody-Waite accuracy
  y = y + -0.5f * z;
  return (m + y) + 0.693359375f * e;
}

// Natural log for any float, with IEEE semantics where log_positive's domain ends: NaN -> NaN,
// +inf -> +inf, +-0 -> -inf, x < 0 -> NaN, subnormals scaled by 2^23 into the normal range
// first. For values computed from data (log-normalizers, VIMCO's sums), where a NaN or an
// infinity in the input must come out as one; the noise transforms keep log_positive, whose
// inputs are uniforms by construction. Selects only, so it vectorizes like log_positive.
GRADEXT_INLINE float log(float x) {
  constexpr float kSmallestNormal = 1.17549435082228751e-38f;  // 2^-126
  const bool subnormal = x < kSmallestNormal;  // also 0 and negatives, replaced below
  const float scaled = subnormal ? x * 8388608.0f : x;  // 2^23
  float r = log_positive(scaled);
  r = subnormal ? r - 15.9423851528787421f : r;  // 23 ln 2
  r = x == 0.0f ? -INFINITY : r;
  r = x < 0.0f ? NAN : r;
  r = x == INFINITY ? INFINITY : r;
  return x == x ? r : x;
}

// exp for any float: overflows to +inf, underflows through the subnormals to 0, NaN stays NaN.
GRADEXT_INLINE float exp(float x) {
  // The clamps are written as x86's max/min (`a > b ? a : b` with the constant second), which
  // GCC emits as one vmaxps/vminps each; a NaN x becomes -104 here and is returned below.
  float xc = x > -104.0f ? x : -104.0f;  // exp(-104) is below the smallest subnormal
  xc = xc < 89.0f ? xc : 89.0f;          // exp(89) overflows float
  const float n = round_small(xc * 1.44269504088896341f);  // x = n ln2 + r, |r| <= ln2 / 2
  float r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  const float z = r * r;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * z + r + 1.0f;
  // Scale by 2^n in two steps so that both factors are normal floats for n in [-150, 128]
  // (floor(n / 2) by an arithmetic shift; any split gives the same single final rounding).
  const int32_t ni = static_cast<int32_t>(n);
  const int32_t half = ni >> 1;
  const float scale0 = bits_to_float(static_cast<uint32_t>(half + 127) << 23);
  const float scale1 = bits_to_float(static_cast<uint32_t>(ni - half + 127) << 23);
  const float result = (p * scale0) * scale1;
  return x == x ? result : x;
}

// sin and cos of 2*pi*u for u in [0, 1]: reduce by quarter turns exactly in u, then evaluate
// the minimax polynomials on [-pi/4, pi/4] and rotate by the quadrant.
GRADEXT_INLINE void sincos_2pi(float u, float* s, float* c) {
  const float t = u * 4.0f;  // exact
  const float q = round_small(t);
  const float x = (t - q) * 1.57079632679489662f;  // t - q exact, in [-0.5, 0.5]
  const float z = x * x;
  float sx = -1.9515295891e-4f;
  sx = sx * z + 8.3321608736e-3f;
  sx = sx * z - 1.6666654611e-1f;
  sx = sx * z * x + x;
  float cx = 2.443315711809948e-5f;
  cx = cx * z - 1.388731625493765e-3f;
  cx = cx * z + 4.166664568298827e-2f;
  cx = cx * z * z - 0.5f * z + 1.0f;
  const int32_t quadrant = static_cast<int32_t>(q);
  const bool swap = (quadrant & 1) != 0;
  const float sin_sign = (quadrant & 2) != 0 ? -1.0f : 1.0f;
  const float cos_sign = ((quadrant + 1) & 2) != 0 ? -1.0f : 1.0f;
  *s = (swap ? cx : sx) * sin_sign;
  *c = (swap ? sx : cx) * cos_sign;
}

// arctan for x in [0, 1] (the von Mises sampler's angle, von_mises_sampler.h): Cephes' atanf
// with its reduction at tan(pi/8), selects only. About 1 ulp.
GRADEXT_INLINE float atan_unit(float x) {
  const bool reduce = x > 0.41421356237309505f;  // tan(pi / 8)
  const float y0 = reduce ? 0.78539816339744831f : 0.0f;
  const float t = reduce ? (x - 1.0f) / (x + 1.0f) : x;
  const float z = t * t;
  float p = 8.05374449538e-2f;
  p = p * z - 1.38776856032e-1f;
  p = p * z + 1.99777106478e-1f;
  p = p * z - 3.33329491539e-1f;
  return y0 + (p * z * t + t);
}

GRADEXT_INLINE float sqrt(float x) {
#if defined(__CUDA_ARCH__)
  return __fsqrt_rn(x);  // IEEE round-to-nearest, as on the host
#else
  return std::sqrt(x);
#endif
}

// exp in double from +, *, one division and 64-bit integer bit operations only, so that GCC
// vectorizes loops of it inside the per-ISA CPU kernels (libm's exp stays a scalar call) and the
// host and the device evaluate it identically: Cephes' exp (Cody-Waite reduction by ln 2 in two
// parts, a (3, 3) Pade form of e^r on |r| <= ln2 / 2, about 1 ulp), then the scale 2^n built in
// the exponent bits. For x in [-708, 709] (clamped there: no infinities, no subnormals).
GRADEXT_INLINE double exp_vectorizable(double x) {
  constexpr double kRoundMagic = 6755399441055744.0;  // 1.5 * 2^52: adding it rounds to integer
  double xc = x > -708.0 ? x : -708.0;
  xc = xc < 709.0 ? xc : 709.0;
  const double shifted = xc * 1.4426950408889634074 + kRoundMagic;  // n + magic, n = round(x / ln2)
  const double n = shifted - kRoundMagic;
  double r = xc - n * 6.93145751953125e-1;
  r = r - n * 1.42860682030941723212e-6;
  const double rr = r * r;
  double p = 1.26177193074810590878e-4;
  p = p * rr + 3.02994407707441961300e-2;
  p = p * rr + 9.99999999999999999910e-1;
  p = p * r;
  double q = 3.00198505138664455042e-6;
  q = q * rr + 2.52448340349684104192e-3;
  q = q * rr + 2.27265548208155028766e-1;
  q = q * rr + 2.00000000000000000009e0;
  const double e = 1.0 + 2.0 * (p / (q - p));
  // n sits in the low bits of `shifted` (two's complement); (n + 1023) << 52 is 2^n's bits.
  const double scale = bits_to_double((double_to_bits(shifted) + 1023u) << 52);
  return e * scale;
}

// Natural log in double from +, *, one division, comparisons and integer bit operations only,
// for the same two reasons as exp_vectorizable (vectorized inside the per-ISA loops, identical on
// host and device): fdlibm's e_log (x = 2^k m with m in [sqrt(2)/2, sqrt(2)), f = m - 1,
// s = f / (2 + f), log(1 + f) = f - f^2/2 + s (f^2/2 + R(s^2)) with a degree-14 minimax R, ln 2
// in two parts), error below 1 ulp. Subnormals are scaled by 2^54 first; 0 gives -inf, a
// negative x NaN, +inf and NaN themselves, all by selects.
GRADEXT_INLINE double log_vectorizable(double x) {
  constexpr double kTwo54 = 18014398509481984.0;
  constexpr double kMinNormal = 2.2250738585072014e-308;
  const bool subnormal = x < kMinNormal;
  const uint64_t bits = double_to_bits(subnormal ? x * kTwo54 : x);
  // The high word, shifted so that its exponent field counts from sqrt(2)/2: k and m in one add.
  const uint32_t high = static_cast<uint32_t>(bits >> 32) + (0x3ff00000u - 0x3fe6a09eu);
  const int32_t k = static_cast<int32_t>(high >> 20) - 0x3ff - (subnormal ? 54 : 0);
  const uint64_t m_high = (high & 0x000fffffu) + 0x3fe6a09eu;
  const double m = bits_to_double((m_high << 32) | (bits & 0xffffffffu));
  const double f = m - 1.0;
  const double half_f2 = 0.5 * f * f;
  const double s = f / (2.0 + f);
  const double z = s * s;
  const double w = z * z;
  const double t1 = w * (3.999999999940941908e-01 +
                         w * (2.222219843214978396e-01 + w * 1.531383769920937332e-01));
  const double t2 =
      z * (6.666666666666735130e-01 +
           w * (2.857142874366239149e-01 +
                w * (1.818357216161805012e-01 + w * 1.479819860511658591e-01)));
  const double poly = t2 + t1;
  const double dk = static_cast<double>(k);
  const double y = s * (half_f2 + poly) + dk * 1.90821492927058770002e-10 - half_f2 + f +
                   dk * 6.93147180369123816490e-01;
  // IEEE edges (the reduction above assumes 0 < x < inf), as math::log(float) sets them.
  double result = (x > 0.0) & (x < double(INFINITY)) ? y : double(NAN);
  result = x == 0.0 ? -double(INFINITY) : result;
  result = x == double(INFINITY) ? double(INFINITY) : result;
  return result;
}

// sin(u) for u in [0, pi / 2] in double from +, * and selects only (vectorizable, and the same
// on host and device; see exp_vectorizable): Cephes' sine and cosine polynomials on [0, pi / 4],
// the upper half as cos(pi / 2 - u) with pi / 2 - u formed exactly (Sterbenz) plus pi / 2's
// low part. About 1 ulp.
GRADEXT_INLINE double sin_quarter_turn(double u) {
  const bool upper = u > 0.78539816339744830962;
  const double r = upper ? (1.57079632679489655800e+00 - u) + 6.12323399573676603587e-17 : u;
  const double z = r * r;
  double sp = 1.58962301576546568060e-10;
  sp = sp * z - 2.50507477628578072866e-8;
  sp = sp * z + 2.75573136213857245213e-6;
  sp = sp * z - 1.98412698295895385996e-4;
  sp = sp * z + 8.33333333332211858878e-3;
  sp = sp * z - 1.66666666666666307295e-1;
  const double sin_r = r + r * (z * sp);
  double cp = -1.13585365213876817300e-11;
  cp = cp * z + 2.08757008419747316778e-9;
  cp = cp * z - 2.75573141792967388112e-7;
  cp = cp * z + 2.48015872888517045348e-5;
  cp = cp * z - 1.38888888888730564116e-3;
  cp = cp * z + 4.16666666666665929218e-2;
  const double cos_r = (1.0 - 0.5 * z) + z * z * cp;
  return upper ? cos_r : sin_r;
}

GRADEXT_INLINE double log_positive(double x) { return ::log(x); }
GRADEXT_INLINE double log(double x) { return ::log(x); }
GRADEXT_INLINE double exp(double x) { return ::exp(x); }
GRADEXT_INLINE double sqrt(double x) { return ::sqrt(x); }
GRADEXT_INLINE double atan_unit(double x) { return ::atan(x); }
// floor is exact (no rounding) in IEEE arithmetic, so host and device agree bitwise.
GRADEXT_INLINE float floor(float x) { return ::floorf(x); }
GRADEXT_INLINE double floor(double x) { return ::floor(x); }
GRADEXT_INLINE void sincos_2pi(double u, double* s, double* c) {
  constexpr double kTwoPi = 6.283185307179586476925286766559;
  *s = ::sin(kTwoPi * u);
  *c = ::cos(kTwoPi * u);
}

// 1 / tau converted to the math type and saturated at its largest finite value. A tau so small
// that 1 / tau overflows (below 2.9e-39 in float) then gives the tau -> 0 limit of a relaxed
// sample (the hard sample of the same noise) instead of 0 * inf = NaN.
GRADEXT_INLINE float saturated_inv_tau(double inv_tau, float /*tag*/) {
  constexpr double kFloatMax = 3.40282346638528859812e+38;
  return static_cast<float>(inv_tau < kFloatMax ? inv_tau : kFloatMax);
}
GRADEXT_INLINE double saturated_inv_tau(double inv_tau, double /*tag*/) {
  constexpr double kDoubleMax = 1.79769313486231570815e+308;
  return inv_tau < kDoubleMax ? inv_tau : kDoubleMax;
}

}  // namespace math
}  // namespace gradext

// The implicit reparameterization gradient of a standard Gamma sample (Figurnov, Mohamed and
// Mnih 2018): for z ~ Gamma(alpha, 1) with CDF P(alpha, z) (the regularized lower incomplete
// gamma function) and density p(z; alpha) = z^(alpha - 1) e^-z / Gamma(alpha),
//
//   dz/dalpha = -(dP(alpha, z)/dalpha) / p(z; alpha),
//
// evaluated in double for every dtype (host and device) by differentiating, in alpha, the two
// classical expansions of P, each where it converges fast and without cancellation:
//
// - below z = alpha + 1 (and below z = 1), the power series
//     P = sum_n z^(alpha + n) e^-z / Gamma(alpha + n + 1).
//   Dividing each term's derivative by p removes every Gamma function:
//     dz/dalpha = sum_n r_n (psi(alpha + n + 1) - ln z),
//     r_0 = z / alpha, r_n = r_(n-1) z / (alpha + n),
//   with the digamma values advanced by psi(x + 1) = psi(x) + 1/x. The terms shrink
//   geometrically once alpha + n > z; where z is near alpha the sum takes O(sqrt(alpha)) terms.
// - above it, Legendre's continued fraction for the upper function Q = 1 - P,
//     Q = z^alpha e^-z / Gamma(alpha) * F,  F = 1/(z + 1 - alpha - 1 (1 - alpha)/(z + 3 - alpha -
//     2 (2 - alpha)/(z + 5 - alpha - ...))),
//   so that dz/dalpha = dQ/dalpha / p = z ((ln z - psi(alpha)) F + dF/dalpha), F and dF/dalpha
//   from one modified-Lentz evaluation in forward-mode dual numbers.
//
// (The same split as Eigen's and TensorFlow's igamma derivatives; written here for gradext's
// host/device build.) The logs are math::log_vectorizable's (fdlibm's, below 1 ulp): the CPU
// kernels run these expansions in vector lanes, where a libm call would stay scalar, and must
// give bitwise these values. The reference in tests/gamma/test_gamma_math.py is mpmath's incomplete
// gamma differentiated at 40 digits.
#pragma once

#include <cfloat>
#include <cmath>

#include "macros.h"
#include "scalar_math.h"

namespace gradext::gamma_math {

// psi(x) from x >= 10, its log and the recurrence's shift -(1/x0 + ... + 1/(x - 1)): ln x -
// 1/(2x) - sum B_2k / (2k x^2k), k = 1..7, plus the shift. Apart from digamma so that the CPU
// lanes (gamma_lanes.h: digamma_lanes) evaluate the same operations in the same order.
GRADEXT_INLINE double digamma_asymptotic(double x, double log_x, double shift) {
  const double inv = 1.0 / x;
  const double inv2 = inv * inv;
  const double tail =
      inv2 * (1.0 / 12 -
              inv2 * (1.0 / 120 -
                      inv2 * (1.0 / 252 -
                              inv2 * (1.0 / 240 -
                                      inv2 * (1.0 / 132 -
                                              inv2 * (691.0 / 32760 - inv2 * (1.0 / 12)))))));
  return shift + log_x - 0.5 * inv - tail;
}

// psi(x) for x > 0 to double precision: the recurrence up to x >= 10, then the asymptotic series.
GRADEXT_INLINE double digamma(double x) {
  // psi(x) = psi(x + m) - (1/x + ... + 1/(x + m - 1)), the sum kept as one fraction num / den
  // (at most ten factors below 10: no overflow) so that it costs one division, not m.
  double num = 0.0, den = 1.0;
  while (x < 10.0) {
    num = num * x + den;
    den *= x;
    x += 1.0;
  }
  const double shift = -num / den;
  return digamma_asymptotic(x, math::log_vectorizable(x), shift);
}

// A value and its derivative in alpha.
struct Dual {
  double v, d;
};

GRADEXT_INLINE Dual operator+(Dual a, Dual b) { return {a.v + b.v, a.d + b.d}; }
GRADEXT_INLINE Dual operator*(Dual a, Dual b) { return {a.v * b.v, a.d * b.v + a.v * b.d}; }
GRADEXT_INLINE Dual operator/(Dual a, Dual b) {
  const double inv = 1.0 / b.v;  // one division (the slowest operation here), two products
  const double q = a.v * inv;
  return {q, (a.d - q * b.d) * inv};
}

constexpr int kMaxTerms = 20000;  // the series near z = alpha = 1e4 needs about 1,000
// Relative size of the last term (the next factor) at which an expansion stops: float64
// resolution for float64 results; the float types' results round to 2^-24, so their expansions
// stop at 2^-30 (about 40% fewer series terms).
constexpr double kTolerance = 1e-16;
constexpr double kFloatTolerance = 9.313225746154785e-10;  // 2^-30

// The tolerance for results stored as scalar_t (float64, or a float type).
template <typename scalar_t>
GRADEXT_INLINE constexpr double tolerance_for() {
  return sizeof(scalar_t) == sizeof(double) ? kTolerance : kFloatTolerance;
}

// The series branch (z < max(alpha + 1, 1)). Two terms per step share one division
// (1/a0 = a1 q, 1/a1 = a0 q with q = 1 / (a0 a1)): the divisions, not the dependency chain, bound
// the loop. It stops once r_n (|psi - ln z| + 1), a bound on the next terms' size that does not
// vanish where psi - ln z changes sign, is below the tolerance relative to the sum (the terms
// then shrink geometrically: z < alpha + n); the sum is positive (dz/dalpha > 0).
GRADEXT_INLINE double dz_dalpha_series(double alpha, double z, double tolerance = kTolerance) {
  const double log_z = math::log_vectorizable(z);
  double r = z / alpha;
  double psi_minus_log_z = digamma(alpha + 1.0) - log_z;
  double sum = r * psi_minus_log_z;
  for (int n = 1; n < kMaxTerms; n += 2) {
    const double a0 = alpha + n;
    const double a1 = a0 + 1.0;
    const double q = 1.0 / (a0 * a1);
    const double inv0 = a1 * q;
    const double inv1 = a0 * q;
    r *= z * inv0;
    psi_minus_log_z += inv0;
    sum += r * psi_minus_log_z;
    r *= z * inv1;
    psi_minus_log_z += inv1;
    sum += r * psi_minus_log_z;
    if (r * (std::fabs(psi_minus_log_z) + 1.0) <= tolerance * sum && z < a1) break;
  }
  return sum;
}

// The continued-fraction branch (z >= max(alpha + 1, 1)): modified Lentz on F = 1 / (b_0 -
// a_1 / (b_1 - a_2 / (b_2 - ...))), b_k = z + 2k + 1 - alpha, a_k = k (k - alpha), in dual numbers.
GRADEXT_INLINE double dz_dalpha_continued_fraction(double alpha, double z,
                                                   double tolerance = kTolerance) {
  constexpr double kTiny = 1e-300;
  Dual b{z + 1.0 - alpha, -1.0};
  Dual c{1.0 / kTiny, 0.0};
  Dual d = Dual{1.0, 0.0} / b;
  Dual f = d;
  for (int k = 1; k < kMaxTerms; ++k) {
    const Dual minus_a{-k * (k - alpha), static_cast<double>(k)};
    b = b + Dual{2.0, 0.0};
    d = b + minus_a * d;
    if (std::fabs(d.v) < kTiny) d.v = kTiny;
    c = b + minus_a / c;
    if (std::fabs(c.v) < kTiny) c.v = kTiny;
    d = Dual{1.0, 0.0} / d;
    const Dual delta = c * d;
    f = f * delta;
    // Converged when the last factor no longer moves F or its derivative (dF = F * sum of the
    // factors' relative derivatives).
    if (std::fabs(delta.v - 1.0) <= tolerance &&
        std::fabs(delta.d * f.v) <= tolerance * std::fabs(f.d)) {
      break;
    }
  }
  return z * ((math::log_vectorizable(z) - digamma(alpha)) * f.v + f.d);
}

// dz/dalpha of a standard Gamma(alpha, 1) sample z (alpha > 0, z > 0).
GRADEXT_INLINE double standard_gamma_dz_dalpha(double alpha, double z,
                                               double tolerance = kTolerance) {
  if (z < alpha + 1.0 || z < 1.0) return dz_dalpha_series(alpha, z, tolerance);
  return dz_dalpha_continued_fraction(alpha, z, tolerance);
}

// d log g / d alpha = (dg/dalpha) / g of a standard Gamma(alpha, 1) sample g given as log g,
// also where g underflows: there (g < 1e-300) every series term but the first is below
// g / alpha of it, and (dg/dalpha) / g = (psi(alpha + 1) - log g) / alpha to double precision.
// NaN where (alpha, log g) is not a point of a Gamma distribution.
GRADEXT_INLINE double standard_gamma_dlog_dalpha(double alpha, double log_g,
                                                 double tolerance = kTolerance) {
  const bool valid = alpha > 0.0 && alpha <= DBL_MAX && log_g == log_g && log_g < 709.0;
  if (!valid) return NAN;
  if (log_g < -690.0) return (digamma(alpha + 1.0) - log_g) / alpha;
  const double g = std::exp(log_g);
  return standard_gamma_dz_dalpha(alpha, g, tolerance) / g;
}

// d z / d concentration of a sample z of Gamma(alpha, rate): the standard sample is z * rate,
// and z = standard / rate. NaN where (alpha, rate, z) is not a point of a Gamma distribution.
GRADEXT_INLINE double gamma_dz_dconcentration(double alpha, double rate, double z,
                                              double tolerance = kTolerance) {
  const double standard = z * rate;
  const bool valid = alpha > 0.0 && alpha <= DBL_MAX && standard > 0.0 && standard <= DBL_MAX;
  if (!valid) return NAN;
  return standard_gamma_dz_dalpha(alpha, standard, tolerance) / rate;
}

}  // namespace gradext::gamma_math

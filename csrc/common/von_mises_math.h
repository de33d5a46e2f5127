// The implicit reparameterization gradient of von Mises samples, in double, host and device.
//
// A sample is theta = loc + delta, delta in [-pi, pi] drawn from p(delta; kappa) =
// exp(kappa cos delta) / (2 pi I0(kappa)) with CDF F. Implicit differentiation of F(delta; kappa)
// = u gives d delta / d kappa = -(dF/dkappa) / p(delta), and with dp/dkappa = p (cos t - A),
// A = I1(kappa) / I0(kappa) (the mean resultant length), and the symmetry of p, for delta >= 0:
//
//   d delta / d kappa = -Int_0^delta  exp(kappa (cos t - cos delta)) (cos t - A) dt   (bulk)
//                     = +Int_delta^pi exp(kappa (cos t - cos delta)) (cos t - A) dt  (tail)
//
// (the two agree because p (cos t - A) integrates to 0 over [0, pi]), and the odd extension for
// delta < 0. Neither form needs I0 or the CDF itself. The integrand of the bulk form is positive
// on [0, delta] while cos delta >= A, the tail form's is negative on [delta, pi] once cos delta <
// A, so each element takes the form without a change of sign, where no cancellation occurs:
//   * bulk: Gauss-Legendre (24 nodes) on [0, delta]; the exponent varies by kappa (1 - cos delta)
//     there, at most a few units, so the integrand is a smooth, slowly varying function;
//   * tail, when kappa (1 + cos delta) <= 40 (the integrand falls by at most e^40 over [delta,
//     pi]): Gauss-Legendre on [delta, pi];
//   * tail, steeper (large kappa, and 2 kappa (1 - cos delta) >= 16, beyond about 4 standard
//     deviations): Gauss-Laguerre (32 nodes) in v = 4 kappa s_d (s - s_d), s = sin(t / 2), in
//     which the integrand is e^-v times a smooth factor (a Gaussian in v of width >= 4 and
//     1 / sqrt(1 - s^2), whose branch point is far away);
//   * in between (4 to 1 standard deviations past the mode of a large kappa), the bulk form,
//     whose two signed parts then cancel by at most a factor of ~10^3.
// Differences cos t - cos delta and cos t - A are formed as 2 (sin^2(delta/2) - sin^2(t/2)) and
// (1 - A) - 2 sin^2(t/2), with 1 - A computed directly (below), so no step subtracts nearly
// equal numbers. Against 40-digit mpmath: relative error below 2e-12 from kappa = 1e-3 to 1e7,
// bulk to 7 standard deviations (docs/design.md).
//
// A and 1 - A: for kappa < 50 Perron's continued fraction I_n / I_(n-1) = 1 / (2n / kappa +
// I_(n+1) / I_n) run backward from n = N (a start estimate from the Amos bound), once for the
// ratio and once for its complement; for kappa >= 50 the ratio of the Hankel asymptotic series
// of I1 and I0, exact to double precision there (the terms fall below 1e-17 long before they
// start to grow).
#pragma once

#include <cmath>

#include "macros.h"

namespace gradext::von_mises_math {

constexpr double kPi = 3.14159265358979323846;
// pi - double(pi): pi - delta is formed as (double(pi) - delta) + kPiLow, exact near delta = pi.
constexpr double kPiLow = 1.2246467991473532e-16;

struct Node {
  double x, w;
};


// A = I1(kappa) / I0(kappa) and its complement 1 - A, each to double precision.
struct BesselRatio {
  double a, one_minus_a;
};

GRADEXT_INLINE BesselRatio bessel_ratio(double kappa) {
  if (kappa < 50.0) {
    // N: where I_N / I_0 < 1e-17 (I_n / I_0 ~ exp(-n^2 / (2 kappa)) for n << kappa).
    const int n_start = 16 + static_cast<int>(::ceil(8.6 * ::sqrt(kappa)));
    const double m = n_start + 1;
    double q = kappa / (m + ::sqrt(m * m + kappa * kappa));  // ~ I_(N+1) / I_N
    double c = 1.0 - q;
    for (int n = n_start; n >= 1; --n) {
      const double a = 2.0 * n / kappa;
      q = 1.0 / (a + q);
      c = (a - c) / (a + 1.0 - c);  // the same step for 1 - q
    }
    return {q, c};
  }
  // Hankel: I_nu(k) e^-k sqrt(2 pi k) ~ sum_j (-1)^j a_j(nu) / k^j, a_j(nu) = prod_(i <= j)
  // (4 nu^2 - (2i - 1)^2) / (i 8); the difference of the two series termwise.
  double t0 = 1.0, t1 = 1.0, s0 = 1.0, s1 = 1.0, difference = 0.0;
  for (int j = 1; j < 60; ++j) {
    const double odd = 2.0 * j - 1.0;
    const double scale = 1.0 / (8.0 * j * kappa);
    t0 *= odd * odd * scale;             // -(0 - odd^2), the (-1)^j folded in
    t1 *= (odd * odd - 4.0) * scale;     // -(4 - odd^2)
    s0 += t0;
    s1 += t1;
    difference += t0 - t1;
    if (::fabs(t0) < 1e-18 && ::fabs(t1) < 1e-18) break;
  }
  return {s1 / s0, difference / s0};
}

// sin^2(x / 2), the stable 1 - cos x over 2.
GRADEXT_INLINE double half_versine(double x) {
  const double s = ::sin(0.5 * x);
  return s * s;
}

// Int_a^b exp(2 kappa (sd2 - sin^2(t/2))) ((1 - A) - 2 sin^2(t/2)) dt by 24-node Gauss-Legendre,
// length = b - a passed separately (near pi it is formed exactly).
GRADEXT_INLINE double legendre_integral(double kappa, double one_minus_a, double sd2, double a,
                                        double length) {
  // Gauss-Legendre on [-1, 1], 24 nodes: the positive half (the rule is symmetric). A local
  // table, so that host and device code read the same constants.
  constexpr Node kLegendre24[12] = {
      {0.06405689286260563, 0.12793819534675202},
      {0.1911188674736163, 0.12583745634682825},
      {0.3150426796961634, 0.1216704729278033},
      {0.4337935076260451, 0.11550566805372552},
      {0.5454214713888396, 0.10744427011596556},
      {0.6480936519369755, 0.09761865210411393},
      {0.7401241915785544, 0.0861901615319532},
      {0.820001985973903, 0.07334648141108016},
      {0.8864155270044011, 0.05929858491543636},
      {0.9382745520027328, 0.04427743881741941},
      {0.9747285559713095, 0.02853138862893356},
      {0.9951872199970213, 0.01234122979998869},
  };
  const double half = 0.5 * length;
  const double middle = a + half;
  double total = 0.0;
  for (int i = 0; i < 12; ++i) {
    for (int side = -1; side <= 1; side += 2) {
      const double t = middle + side * half * kLegendre24[i].x;
      const double st2 = half_versine(t);
      total += kLegendre24[i].w * ::exp(2.0 * kappa * (sd2 - st2)) * (one_minus_a - 2.0 * st2);
    }
  }
  return total * half;
}

// The tail form for large kappa: Int_delta^pi, by 32-node Gauss-Laguerre in
// v = lambda (s - s_d), lambda = 4 kappa s_d, s = sin(t / 2):
//   Int = (1 / lambda) Int_0^(lambda (1 - s_d)) e^-v e^(-v^2 / (8 kappa s_d^2))
//         ((1 - A) - 2 s^2) 2 / sqrt(1 - s^2) dv
// (nodes past s = 1, where e^-v is below 1e-17 of the integral, are left out).
GRADEXT_INLINE double laguerre_tail_integral(double kappa, double one_minus_a, double sd) {
  // Gauss-Laguerre (weight e^-v on [0, inf)), 32 nodes.
  constexpr Node kLaguerre32[32] = {
      {0.04448936583326739, 0.10921834195242515},
      {0.23452610951961825, 0.2104431079387924},
      {0.5768846293018863, 0.23521322966984298},
      {1.072448753817818, 0.19590333597287354},
      {1.7224087764446456, 0.1299837862860684},
      {2.5283367064257942, 0.07057862386571556},
      {3.492213273021994, 0.03176091250917397},
      {4.616456769749767, 0.011918214834838204},
      {5.903958504174244, 0.003738816294611417},
      {7.358126733186241, 0.0009808033066149246},
      {8.982940924212597, 0.0002148649188013578},
      {10.78301863253997, 3.920341967987801e-05},
      {12.763697986742725, 5.934541612868448e-06},
      {14.931139755522558, 7.41640457866734e-07},
      {17.292454336715316, 7.604567879120552e-08},
      {19.855860940336054, 6.350602226625618e-09},
      {22.630889013196775, 4.281382971040738e-10},
      {25.628636022459247, 2.305899491891237e-11},
      {28.862101816323474, 9.799379288726772e-13},
      {32.346629153964734, 3.2378016577291567e-14},
      {36.10049480575197, 8.171823443420549e-16},
      {40.14571977153944, 1.542133833393811e-17},
      {44.50920799575494, 2.119792290163547e-19},
      {49.22439498730864, 2.0544296737880036e-21},
      {54.33372133339691, 1.3469825866373617e-23},
      {59.89250916213402, 5.661294130397462e-26},
      {65.97537728793505, 1.4185605454629684e-28},
      {72.68762809066271, 1.9133754944539943e-31},
      {80.18744697791352, 1.1922487600982012e-34},
      {88.7353404178924, 2.6715112192396625e-38},
      {98.82954286828398, 1.3386169421064243e-42},
      {111.7513980979377, 4.5105361938987784e-48},
  };
  const double lambda = 4.0 * kappa * sd;
  const double beta = 1.0 / (8.0 * kappa * sd * sd);
  double total = 0.0;
  for (int i = 0; i < 32; ++i) {
    const double v = kLaguerre32[i].x;
    const double s = sd + v / lambda;
    if (s >= 1.0) break;
    total += kLaguerre32[i].w * ::exp(-beta * v * v) * (one_minus_a - 2.0 * s * s) * 2.0 /
             ::sqrt(1.0 - s * s);
  }
  return total / lambda;
}

// d delta / d kappa at the sample's offset delta from loc (in [-pi, pi]), kappa > 0.
GRADEXT_INLINE double von_mises_ddelta_dkappa(double kappa, double delta) {
  const double d = ::fabs(delta);
  const BesselRatio ratio = bessel_ratio(kappa);
  const double sd2 = half_versine(d);
  double value;
  if (2.0 * sd2 <= ratio.one_minus_a) {  // cos d >= A: the bulk form, a positive integrand
    value = -legendre_integral(kappa, ratio.one_minus_a, sd2, 0.0, d);
  } else if (2.0 * kappa * (1.0 - sd2) <= 40.0) {  // kappa (1 + cos d): a gentle tail
    value = legendre_integral(kappa, ratio.one_minus_a, sd2, d, (kPi - d) + kPiLow);
  } else if (4.0 * kappa * sd2 >= 16.0) {  // 2 kappa (1 - cos d): a steep, far tail
    value = laguerre_tail_integral(kappa, ratio.one_minus_a, ::sqrt(sd2));
  } else {
    value = -legendre_integral(kappa, ratio.one_minus_a, sd2, 0.0, d);
  }
  return delta < 0.0 ? -value : value;
}

}  // namespace gradext::von_mises_math

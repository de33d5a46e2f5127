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
//   * bulk: Gauss-Legendre (16 nodes) in s = sin(t / 2) on [0, sin(delta / 2)]: the exponent
//     varies by kappa (1 - cos delta) there, a few units at most, the integrand is smooth and
//     slowly varying, and no node needs a sine;
//   * tail, when kappa (1 + cos delta) <= 40 (the integrand falls by at most e^40 over [delta,
//     pi]): Gauss-Legendre (24 nodes) in t on [delta, pi];
//   * tail, steeper (large kappa, and 2 kappa (1 - cos delta) >= 16, beyond about 4 standard
//     deviations): Gauss-Laguerre (32 nodes) in v = 4 kappa s_d (s - s_d), s = sin(t / 2), in
//     which the integrand is e^-v times a smooth factor (a Gaussian in v of width >= 4 and
//     1 / sqrt(1 - s^2), whose branch point is far away);
//   * in between (4 to 1 standard deviations past the mode of a large kappa), the bulk form,
//     whose two signed parts then cancel by at most a factor of ~10^3.
// Differences cos t - cos delta and cos t - A are formed as 2 (sin^2(delta/2) - sin^2(t/2)) and
// (1 - A) - 2 sin^2(t/2), with 1 - A computed directly (below), so no step subtracts nearly
// equal numbers. Against 40-digit mpmath: relative error below 3e-12 from kappa = 1e-3 to 1e7,
// offsets to 7 standard deviations and to pi (docs/design.md).
//
// 1 - A: for kappa < 50 Perron's continued fraction I_n / I_(n-1) = 1 / (2n / kappa +
// I_(n+1) / I_n) run backward from n = N (started at the Amos bound), in its complement form;
// for kappa >= 50 the Hankel asymptotic series of I1 and I0, exact to double precision there (the
// terms fall below 1e-17 long before they start to grow).
#pragma once

#include <cmath>

#include "macros.h"
#include "scalar_math.h"

namespace gradext::von_mises_math {

constexpr double kPi = 3.14159265358979323846;
// pi - double(pi): pi - delta is formed as (double(pi) - delta) + kPiLow, exact near delta = pi.
constexpr double kPiLow = 1.2246467991473532e-16;

struct Node {
  double x, w;
};

// Perron's fraction for kappa < 50, in pieces that the CPU kernels also run in vector lanes
// (von_mises_cpu_impl.h), with the same operations: its length N, its start 1 - q_(N+1), and
// one step 1 - q_n = (a - c) / (a + 1 - c) from c = 1 - q_(n+1), a = 2n / kappa.
GRADEXT_INLINE int perron_terms(double kappa) {
  return 8 + static_cast<int>(::ceil(6.0 * ::sqrt(kappa)));
}

GRADEXT_INLINE double perron_start(double kappa, int n_start) {
  const double m = n_start + 1;
  return 1.0 - kappa / (m + ::sqrt(m * m + kappa * kappa));
}

GRADEXT_INLINE double perron_step(double a, double c) { return (a - c) / (a + 1.0 - c); }

// Where Hankel's series replaces Perron's fraction.
constexpr double kHankelFrom = 50.0;

// 1 - A, A = I1(kappa) / I0(kappa) (the mean resultant length), to double precision also where
// A rounds to 1.
GRADEXT_INLINE double one_minus_mean_resultant(double kappa) {
  if (kappa < kHankelFrom) {
    // Perron's fraction from n = N down: the start's error reaches n = 1 damped by
    // (I_N / I_1)^2 ~ exp(-N^2 / kappa) (below 1e-15 for this N, measured to kappa = 50), and
    // the start is already the Amos bound kappa / (n + sqrt(n^2 + kappa^2)) of I_n / I_(n-1).
    const int n_start = perron_terms(kappa);
    const double inverse = 1.0 / kappa;
    double c = perron_start(kappa, n_start);
    for (int n = n_start; n >= 1; --n) c = perron_step(n * (2.0 * inverse), c);
    return c;
  }
  // Hankel: I_nu(k) e^-k sqrt(2 pi k) ~ sum_j (-1)^j a_j(nu) / k^j, a_j(nu) = prod_(i <= j)
  // (4 nu^2 - (2i - 1)^2) / (i 8); 1 - A is the difference of the two series, taken termwise,
  // over the series of I0.
  double t0 = 1.0, t1 = 1.0, s0 = 1.0, difference = 0.0;
  for (int j = 1; j < 60; ++j) {
    const double odd = 2.0 * j - 1.0;
    const double scale = 1.0 / (8.0 * j * kappa);
    t0 *= odd * odd * scale;          // -(0 - odd^2): the (-1)^j folded in
    t1 *= (odd * odd - 4.0) * scale;  // -(4 - odd^2)
    s0 += t0;
    difference += t0 - t1;
    if (::fabs(t0) < 1e-18 && ::fabs(t1) < 1e-18) break;
  }
  return difference / s0;
}

// sin^2(x / 2), the stable 1 - cos x over 2.
GRADEXT_INLINE double half_versine(double x) {
  const double s = ::sin(0.5 * x);
  return s * s;
}

// The Gauss-Legendre rules on [-1, 1] of 16 and 24 nodes, node by node: visit(x, w) for the
// positive half (the rules are symmetric: -x has the same weight). The tables are local
// constants, so that host and device code read the same numbers.
template <int Half, class Visit>
GRADEXT_INLINE void visit_nodes(const Node (&nodes)[Half], const Visit& visit) {
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int i = 0; i < Half; ++i) visit(nodes[i].x, nodes[i].w);
}

template <int Points, class Visit>
GRADEXT_INLINE void for_each_legendre_node(const Visit& visit) {
  static_assert(Points == 16 || Points == 24, "tabulated rules: 16 and 24 nodes");
  if constexpr (Points == 16) {
    constexpr Node kNodes16[8] = {
        {0.09501250983763744, 0.18945061045506864},
        {0.2816035507792589, 0.18260341504492364},
        {0.45801677765722737, 0.16915651939500265},
        {0.6178762444026438, 0.1495959888165767},
        {0.755404408355003, 0.12462897125553407},
        {0.8656312023878318, 0.0951585116824926},
        {0.9445750230732326, 0.062253523938647456},
        {0.9894009349916499, 0.027152459411754176},
    };
    visit_nodes(kNodes16, visit);
  } else {
    constexpr Node kNodes24[12] = {
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
    visit_nodes(kNodes24, visit);
  }
}

// Int_-1^1 f by the rule of Points nodes, summed node by node in the order of the table.
template <int Points, class F>
GRADEXT_INLINE double gauss_legendre(const F& f) {
  double total = 0.0;
  for_each_legendre_node<Points>([&](double x, double w) { total += w * (f(-x) + f(x)); });
  return total;
}

// The bulk integral Int_0^delta exp(kappa (cos t - cos delta)) (cos t - A) dt in s = sin(t / 2):
//   Int_0^s_d exp(2 kappa (s_d^2 - s^2)) ((1 - A) - 2 s^2) 2 / sqrt(1 - s^2) ds,
// smooth on [0, s_d] (s_d <= sin(pi / 4) where the bulk form is taken for any kappa below 50,
// and small above, so the branch point s = 1 is far), and free of trigonometric calls. Its
// integrand at the rule's node x in [-1, 1] (half = s_d / 2), written once for this function and
// for the CPU kernels' vector lanes (von_mises_cpu_impl.h); the exponent lies in [0, ~10].
GRADEXT_INLINE double bulk_integrand(double kappa, double one_minus_a, double sd2, double half,
                                     double x) {
  const double s = half + half * x;
  const double s2 = s * s;
  return math::exp_vectorizable(2.0 * kappa * (sd2 - s2)) * (one_minus_a - 2.0 * s2) * 2.0 /
         math::sqrt(1.0 - s2);
}

GRADEXT_INLINE double bulk_integral(double kappa, double one_minus_a, double sd) {
  const double half = 0.5 * sd;
  const double sd2 = sd * sd;
  return half * gauss_legendre<16>(
                    [&](double x) { return bulk_integrand(kappa, one_minus_a, sd2, half, x); });
}

// The gentle tail Int_delta^pi exp(kappa (cos t - cos delta)) (cos t - A) dt in t, where the
// integrand falls by at most e^40 (half = (pi - delta) / 2, formed exactly near pi, and
// middle = delta + half). Its integrand at the rule's node x, written once for this function and
// for the CPU kernels' vector lanes; sin(t / 2) with t / 2 in [0, pi / 2].
GRADEXT_INLINE double tail_integrand(double kappa, double one_minus_a, double sd2, double middle,
                                     double half, double x) {
  const double st = math::sin_quarter_turn(0.5 * (middle + half * x));
  const double st2 = st * st;
  return math::exp_vectorizable(2.0 * kappa * (sd2 - st2)) * (one_minus_a - 2.0 * st2);
}

GRADEXT_INLINE double tail_half_length(double d) { return 0.5 * ((kPi - d) + kPiLow); }

GRADEXT_INLINE double tail_integral(double kappa, double one_minus_a, double sd2, double d) {
  const double half = tail_half_length(d);
  const double middle = d + half;
  return half * gauss_legendre<24>([&](double x) {
    return tail_integrand(kappa, one_minus_a, sd2, middle, half, x);
  });
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

// Which integral an element takes (see the top of this file), from kappa, 1 - A and
// sin^2(delta / 2).
enum class Form { kBulk, kGentleTail, kSteepTail };

GRADEXT_INLINE Form integral_form(double kappa, double one_minus_a, double sd2) {
  if (2.0 * sd2 <= one_minus_a) return Form::kBulk;  // cos d >= A: a positive integrand
  // past the sign change: kappa (1 + cos d) <= 40, a gentle tail; 2 kappa (1 - cos d) >= 16, a
  // steep, far one; the band in between takes the bulk form
  if (2.0 * kappa * (1.0 - sd2) <= 40.0) return Form::kGentleTail;
  return 4.0 * kappa * sd2 >= 16.0 ? Form::kSteepTail : Form::kBulk;
}

// d |delta| / d kappa for |delta| = d, given sd2 = sin^2(d / 2) and the element's form.
GRADEXT_INLINE double ddelta_dkappa_of_form(Form form, double kappa, double one_minus_a, double d,
                                            double sd2) {
  switch (form) {
    case Form::kGentleTail:
      return tail_integral(kappa, one_minus_a, sd2, d);
    case Form::kSteepTail:
      return laguerre_tail_integral(kappa, one_minus_a, math::sqrt(sd2));
    default:
      return -bulk_integral(kappa, one_minus_a, math::sqrt(sd2));
  }
}

// d delta / d kappa at the sample's offset delta from loc (in [-pi, pi]), kappa > 0, given
// one_minus_a = one_minus_mean_resultant(kappa).
GRADEXT_INLINE double ddelta_dkappa(double kappa, double one_minus_a, double delta) {
  const double d = ::fabs(delta);
  const double sd2 = half_versine(d);
  const double value =
      ddelta_dkappa_of_form(integral_form(kappa, one_minus_a, sd2), kappa, one_minus_a, d, sd2);
  return delta < 0.0 ? -value : value;
}

GRADEXT_INLINE double von_mises_ddelta_dkappa(double kappa, double delta) {
  return ddelta_dkappa(kappa, one_minus_mean_resultant(kappa), delta);
}

}  // namespace gradext::von_mises_math

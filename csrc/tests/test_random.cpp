// C++ unit tests of the shared random-number code (run by CTest): Philox known answers, the
// open-interval uniforms, the polynomial elementary functions and the normal transform.
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <initializer_list>
#include <limits>

#include "common/philox.h"
#include "common/random_transforms.h"
#include "common/scalar_math.h"
#include "tests/check.h"

namespace {

using gradext::testing::check;

void test_philox_known_answers() {
  // Random123's kat_vectors for philox4x32_10.
  struct Case {
    gradext::Philox4x32 ctr;
    uint32_t k0, k1;
    gradext::Philox4x32 expected;
  };
  const Case cases[] = {
      {{0, 0, 0, 0}, 0, 0, {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}},
      {{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
       0xffffffffu,
       0xffffffffu,
       {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}},
      {{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
       0xa4093822u,
       0x299f31d0u,
       {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}},
  };
  for (const Case& c : cases) {
    const gradext::Philox4x32 r = gradext::philox4x32_10(c.ctr, c.k0, c.k1);
    check(r.x == c.expected.x && r.y == c.expected.y && r.z == c.expected.z &&
              r.w == c.expected.w,
          "philox4x32_10 known-answer vector");
  }
}

void test_stream_layout() {
  // Element index walks the low counter words, the offset the high ones, the key is domain-
  // separated from the bare seed.
  const uint64_t seed = 0x0123456789abcdefull, offset = 0xfedcba9876543210ull;
  const auto stream = gradext::PhiloxStream::make(seed, offset);
  const uint64_t key = seed ^ gradext::kGradextKeyDomain;
  const uint64_t block = 0x00000001deadbeefull;
  const gradext::Philox4x32 direct = gradext::philox4x32_10(
      {static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32),
       static_cast<uint32_t>(offset), static_cast<uint32_t>(offset >> 32)},
      static_cast<uint32_t>(key), static_cast<uint32_t>(key >> 32));
  const gradext::Philox4x32 via_stream = stream.block(block);
  check(direct.x == via_stream.x && direct.y == via_stream.y && direct.z == via_stream.z &&
            direct.w == via_stream.w,
        "PhiloxStream::block follows the documented counter/key layout");
}

void test_uniform_edges() {
  const float f_lo = gradext::uniform_open(0u, 0.0f);
  const float f_hi = gradext::uniform_open(0xffffffffu, 0.0f);
  check(f_lo > 0.0f && f_lo == 5.9604644775390625e-8f, "float uniform minimum is 2^-24");
  check(f_hi < 1.0f && f_hi == 1.0f - 5.9604644775390625e-8f, "float uniform maximum is 1-2^-24");
  check(f_lo + f_hi == 1.0f, "float uniform grid is symmetric about 1/2");
  const double d_lo = gradext::uniform_open(0u, 0.0);
  const double d_hi = gradext::uniform_open(0xffffffffu, 0.0);
  check(d_lo > 0.0 && d_hi < 1.0 && d_lo + d_hi == 1.0, "double uniform inside (0, 1), symmetric");
  bool monotone = true;
  float prev = 0.0f;
  for (uint64_t bits = 0; bits <= 0xffffffffull; bits += 0x10000ull) {
    const float u = gradext::uniform_open(static_cast<uint32_t>(bits), 0.0f);
    monotone = monotone && u > prev && u < 1.0f;
    prev = u;
  }
  check(monotone, "float uniform increasing and below 1 over a sweep of bit patterns");
}

double relative_error(double got, double want) {
  return want == 0.0 ? std::fabs(got) : std::fabs(got - want) / std::fabs(want);
}

void test_log_accuracy() {
  double worst = 0.0;
  for (uint32_t k = 1; k < (1u << 24); k += 7) {  // every 7th point of the float uniform grid
    const float u = static_cast<float>(k) * 5.9604644775390625e-8f;
    worst = std::fmax(worst, relative_error(gradext::math::log_positive(u), std::log((double)u)));
  }
  std::printf("log_positive: max relative error %.3g\n", worst);
  check(worst < 4e-7, "log_positive within 4e-7 relative on the uniform grid");
}

// math::log is for data (log-normalizers, VIMCO's sums): accurate over the whole float range and
// IEEE at its edges. The CPU kernels inline the same function in every ISA variant, which
// tests/contracts/test_contract_invalid_inputs.py drives through the ops.
void test_full_range_log_accuracy_and_edges() {
  using gradext::math::log;
  constexpr float kInf = std::numeric_limits<float>::infinity();
  double worst = 0.0;
  for (uint32_t bits = 1; bits < 0x7f800000u; bits += 997) {  // subnormals to the largest floats
    const float x = gradext::math::bits_to_float(bits);
    const double want = std::log(static_cast<double>(x));
    worst = std::fmax(worst, std::fabs(log(x) - want) / std::fmax(1.0, std::fabs(want)));
  }
  std::printf("log: max error %.3g (relative, absolute near 1)\n", worst);
  check(worst < 4e-7, "log within 4e-7 over subnormal to largest floats");
  check(std::isnan(log(std::numeric_limits<float>::quiet_NaN())), "log(NaN) = NaN");
  check(log(kInf) == kInf, "log(inf) = inf");
  check(log(0.0f) == -kInf && log(-0.0f) == -kInf, "log(+-0) = -inf");
  check(std::isnan(log(-1.0f)) && std::isnan(log(-kInf)), "log of a negative number is NaN");
  check(log(1.0f) == 0.0f, "log(1) = 0");
}

// math::log_vectorizable (double) carries the implicit Gamma gradient's logs (gamma_math.h) in
// the CPU lanes and on the device: within 1 ulp of libm's log over every binade, subnormals
// included, and IEEE at its edges.
void test_double_log_accuracy_and_edges() {
  using gradext::math::log_vectorizable;
  constexpr double kInf = std::numeric_limits<double>::infinity();
  double worst_ulps = 0.0;
  uint64_t state = 0x9e3779b97f4a7c15ull;  // splitmix64: bit patterns over the whole range
  for (int i = 0; i < 4000000; ++i) {
    state += 0x9e3779b97f4a7c15ull;
    uint64_t bits = state;
    bits = (bits ^ (bits >> 30)) * 0xbf58476d1ce4e5b9ull;
    bits = (bits ^ (bits >> 27)) * 0x94d049bb133111ebull;
    bits = (bits ^ (bits >> 31)) & 0x7fffffffffffffffull;
    const double x = gradext::math::bits_to_double(bits);
    if (!(x > 0.0) || x == kInf) continue;  // NaN patterns and inf: the edge checks below
    const double want = std::log(x);
    const double ulp = std::fabs(std::nextafter(want, kInf) - want);
    worst_ulps = std::fmax(worst_ulps, std::fabs(log_vectorizable(x) - want) / ulp);
  }
  std::printf("log_vectorizable: max error %.3g ulp\n", worst_ulps);
  check(worst_ulps <= 1.0, "log_vectorizable within 1 ulp of libm over all positive doubles");
  check(log_vectorizable(1.0) == 0.0, "log_vectorizable(1) = 0");
  check(std::isnan(log_vectorizable(std::numeric_limits<double>::quiet_NaN())),
        "log_vectorizable(NaN) = NaN");
  check(log_vectorizable(kInf) == kInf, "log_vectorizable(inf) = inf");
  check(log_vectorizable(0.0) == -kInf && log_vectorizable(-0.0) == -kInf,
        "log_vectorizable(+-0) = -inf");
  check(std::isnan(log_vectorizable(-1.0)) && std::isnan(log_vectorizable(-kInf)),
        "log_vectorizable of a negative number is NaN");
}

void test_exp_accuracy_and_edges() {
  double worst = 0.0;
  for (float x = -87.0f; x < 88.0f; x += 0.001953125f) {
    worst = std::fmax(worst, relative_error(gradext::math::exp(x), std::exp((double)x)));
  }
  std::printf("exp: max relative error %.3g\n", worst);
  check(worst < 4e-7, "exp within 4e-7 relative on [-87, 88]");
  check(std::isinf(gradext::math::exp(89.0f)) && std::isinf(gradext::math::exp(1e30f)),
        "exp overflows to inf");
  check(gradext::math::exp(std::numeric_limits<float>::infinity()) ==
            std::numeric_limits<float>::infinity(),
        "exp(inf) = inf");
  check(gradext::math::exp(-std::numeric_limits<float>::infinity()) == 0.0f, "exp(-inf) = 0");
  check(gradext::math::exp(-120.0f) == 0.0f, "exp underflows to 0");
  const float sub = gradext::math::exp(-100.0f);  // 3.72e-44, a subnormal
  check(sub > 0.0f && relative_error(sub, std::exp(-100.0)) < 0.05, "exp reaches subnormals");
  check(std::isnan(gradext::math::exp(std::numeric_limits<float>::quiet_NaN())), "exp(NaN) = NaN");
  check(gradext::math::exp(0.0f) == 1.0f, "exp(0) = 1");
}

void test_sincos_accuracy() {
  double worst = 0.0;
  for (uint32_t k = 1; k < (1u << 24); k += 13) {
    const float u = static_cast<float>(k) * 5.9604644775390625e-8f;
    float s, c;
    gradext::math::sincos_2pi(u, &s, &c);
    const double angle = 6.283185307179586476925286766559 * (double)u;
    worst = std::fmax(worst, std::fabs(s - std::sin(angle)));
    worst = std::fmax(worst, std::fabs(c - std::cos(angle)));
  }
  std::printf("sincos_2pi: max absolute error %.3g\n", worst);
  check(worst < 3e-7, "sincos_2pi within 3e-7 absolute");
}

void test_normal_extremes() {
  // Extreme words: radius uniform at its smallest gives the largest |n|, still finite.
  float a, b;
  gradext::box_muller(0u, 0u, &a, &b);
  check(std::isfinite(a) && std::isfinite(b) && std::fabs(a) > 5.7f && std::fabs(a) < 5.8f,
        "float Box-Muller at the smallest uniform is finite, about 5.77");
  gradext::box_muller(0xffffffffu, 0xffffffffu, &a, &b);
  check(std::isfinite(a) && std::isfinite(b) && std::fabs(a) < 1e-3f,
        "float Box-Muller at the largest uniform is finite and near 0");
  double da, db;
  gradext::box_muller(0u, 0x40000000u, &da, &db);
  check(std::isfinite(da) && std::isfinite(db) && std::fabs(std::hypot(da, db) - 6.7637) < 1e-3,
        "double Box-Muller at the smallest uniform has radius 6.76");
  // normal_at agrees with normal4 lane by lane.
  const auto stream = gradext::PhiloxStream::make(42, 7);
  bool same = true;
  for (uint64_t block = 0; block < 64; ++block) {
    float four[4];
    gradext::normal4(stream, block, four);
    for (int lane = 0; lane < 4; ++lane) {
      same = same && gradext::normal_at<float>(stream, 4 * block + lane) == four[lane];
    }
  }
  check(same, "normal_at equals the matching lane of normal4");
}

void test_normal_moments() {
  // 4M normals: mean within 5 standard errors of 0, variance within 5 standard errors of 1.
  const auto stream = gradext::PhiloxStream::make(2024, 0);
  const int blocks = 1 << 20;
  double sum = 0.0, sum_sq = 0.0;
  bool finite = true;
  for (int block = 0; block < blocks; ++block) {
    float four[4];
    gradext::normal4(stream, static_cast<uint64_t>(block), four);
    for (float v : four) {
      finite = finite && std::isfinite(v);
      sum += v;
      sum_sq += static_cast<double>(v) * v;
    }
  }
  const double n = 4.0 * blocks;
  const double mean = sum / n;
  const double var = sum_sq / n - mean * mean;
  std::printf("normal moments over %.0f draws: mean %.3g, variance %.6f\n", n, mean, var);
  check(finite, "all normals finite");
  check(std::fabs(mean) < 5.0 / std::sqrt(n), "normal mean within 5 standard errors of 0");
  check(std::fabs(var - 1.0) < 5.0 * std::sqrt(2.0 / n), "normal variance within 5 s.e. of 1");
}

}  // namespace

// The float exponential behind the Gumbel noise keeps the 32-bit uniform's resolution: within
// 4e-7 relative of the exact -log((w + 1/2) 2^-32) for every word in both tails (the 2^20 words
// nearest u = 0 and u = 1) and on a stride through the bulk, never increasing in w, and as small
// as 2^-33 (so the Gumbel variable reaches 22.9).
void test_exponential_resolution() {
  double worst = 0.0;
  bool monotone = true;
  float previous = INFINITY;
  for (uint64_t w = 0; w < (uint64_t{1} << 32); w += (w < (1u << 20) || w >= 0xfff00000u) ? 1 : 4099) {
    const uint32_t word = static_cast<uint32_t>(w);
    const float e = gradext::exponential<float>(word);
    const double v = (static_cast<double>(0xffffffffu - word) + 0.5) * 2.3283064365386962890625e-10;
    const double u = (static_cast<double>(word) + 0.5) * 2.3283064365386962890625e-10;
    const double exact = word >= 0x80000000u ? -std::log1p(-v) : -std::log(u);
    worst = std::fmax(worst, std::fabs(e - exact) / exact);
    monotone = monotone && e <= previous;
    previous = e;
  }
  std::printf("exponential<float>: max relative error %.3g over both tails and the bulk\n", worst);
  check(worst < 4e-7, "exponential<float> within 4e-7 relative of -log u on the 32-bit grid");
  check(monotone, "exponential<float> never increases with the word");
  check(gradext::exponential<float>(0xffffffffu) == 1.16415321826934814453125e-10f,
        "the smallest exponential is 2^-33 (Gumbel up to 22.9)");
}

// The probability that Gumbel-max picks a category of logit -d against one of logit 0, implied
// by the float noise itself: P = mean over words w_A of #{w_B : e(w_B) < e(w_A) e^-d} / 2^32,
// counted by bisection (e is monotone) at 2^18 evenly spaced w_A. Exact: 1 / (1 + e^d). The
// 24-bit float uniform this replaces gave 0.72 of the exact value at d = 17 (p = 4e-8) and 0 at
// d = 20.7 (p = 1e-9).
double implied_gumbel_max_probability(double d) {
  auto below = [](double t) -> double {  // #{w : e(w) < t}, the words just below 2^32
    if (!(gradext::exponential<float>(0xffffffffu) < t)) return 0.0;
    uint64_t lo = 0, hi = uint64_t{1} << 31;  // e(2^32 - 1 - lo) < t <= e(2^32 - 1 - hi)
    while (hi - lo > 1) {
      const uint64_t mid = (lo + hi) / 2;
      if (gradext::exponential<float>(static_cast<uint32_t>(0xffffffffu - mid)) < t) {
        lo = mid;
      } else {
        hi = mid;
      }
    }
    return static_cast<double>(lo + 1);
  };
  constexpr int kPoints = 1 << 18;
  double total = 0.0;
  for (int i = 0; i < kPoints; ++i) {
    const uint32_t word = static_cast<uint32_t>((uint64_t{static_cast<uint32_t>(i)} << 14) + 8192);
    total += below(gradext::exponential<float>(word) * std::exp(-d));
  }
  return total / kPoints / 4294967296.0;
}

void test_gumbel_max_tail_probabilities() {
  for (double d : {10.0, 15.0, 17.0, 20.7}) {
    const double exact = 1.0 / (1.0 + std::exp(d));
    const double ratio = implied_gumbel_max_probability(d) / exact;
    std::printf("Gumbel-max, logit gap %.1f (p = %.3g): implied / exact = %.5f\n", d, exact, ratio);
    check(std::fabs(ratio - 1.0) < 5e-3, "Gumbel-max exact within 0.5% down to p = 1e-9");
  }
}

int main() {
  test_philox_known_answers();
  test_stream_layout();
  test_uniform_edges();
  test_log_accuracy();
  test_full_range_log_accuracy_and_edges();
  test_double_log_accuracy_and_edges();
  test_exp_accuracy_and_edges();
  test_sincos_accuracy();
  test_normal_extremes();
  test_normal_moments();
  test_exponential_resolution();
  test_gumbel_max_tail_probabilities();
  return gradext::testing::finish();
}

// The CPU Gamma kernels, written once and compiled once per instruction set: this file is
// included through per_isa.h by gamma_kernel.cpp (no include guard on purpose, no includes of
// its own).
//
// Forward: a tile of elements takes the first proposal of Marsaglia and Tsang's sampler in
// vector loops (Philox block 0 of each element's sub-stream from philox_lanes.h, Box-Muller, the
// squeeze test, the alpha < 1 boost), each loop one transcendental chain as in noise_fill.h.
// The squeeze alone accepts the first proposal of about 92% of elements at any shape (measured
// from 1 to 30; the full test, with its log, would accept 95% at shape 1 and 98% at 2); the rest,
// and elements with invalid parameters, run the scalar sampler
// (gamma_element.h), which draws the same first proposal from the same words and goes on. The
// vector pass evaluates the scalar code's float operations in the same order, so every element
// is bitwise the scalar sampler's value (checked per ISA variant by the tests), and the CUDA
// kernel's.
//
// Backward: the implicit gradient in double (gamma_math.h's expansions), several elements'
// expansions side by side in vector lanes, bitwise the scalar functions' values. The vector
// pieces are in gamma_lanes.h, shared with the Dirichlet kernels.

#include "ops/cpu/gamma_lanes.h"


template <typename scalar_t>
int64_t gamma_forward_range(const GammaForwardArgs& a, int64_t begin, int64_t end) {
  using T = at::opmath_type<scalar_t>;
  const auto* concentration = static_cast<const scalar_t*>(a.concentration);
  const auto* rate = static_cast<const scalar_t*>(a.rate);
  auto* z = static_cast<scalar_t*>(a.z);
  const uint64_t key = PhiloxSubstream::key(a.seed, a.offset);
  alignas(64) uint32_t X[kGammaTile], Y[kGammaTile], Z[kGammaTile], W[kGammaTile];
  alignas(64) T alpha[kGammaTile], beta[kGammaTile], sample[kGammaTile], log_sample[kGammaTile];
  alignas(64) bool accepted[kGammaTile];
  int64_t first_invalid = -1;
  Layout2DCursor at(a.layout, begin % a.sample_numel);
  for (int64_t e0 = begin; e0 < end; e0 += kGammaTile) {
    const int64_t n = std::min(kGammaTile, end - e0);
    bool any_boost = false;
    for (int64_t t = 0; t < n; ++t, at.advance()) {
      alpha[t] = static_cast<T>(concentration[at.offset(0)]);
      beta[t] = static_cast<T>(rate[at.offset(1)]);
      any_boost = any_boost || !(alpha[t] >= T(1));
    }
    philox_substream_first_blocks(key, static_cast<uint64_t>(e0), n, X, Y, Z, W);
    first_proposals(alpha, X, Y, Z, n, sample, accepted);
    if (any_boost) {  // the boost of alpha < 1: z = exp(log G + log(u) / alpha), clamped
      log_first_samples(alpha, sample, W, n, log_sample);
      for (int64_t t = 0; t < n; ++t) {
        const T boosted = math::exp(log_sample[t]);
        const T small = std::numeric_limits<T>::min();
        const T clamped = boosted < small ? small : boosted;
        sample[t] = alpha[t] >= T(1) ? sample[t] : clamped;
      }
    }
    for (int64_t t = 0; t < n; ++t) {
      const T value = clamp_positive<scalar_t>(sample[t] / beta[t]);
      z[e0 + t] = static_cast<scalar_t>(value);
    }
    for (int64_t t = 0; t < n; ++t) {
      if (accepted[t] && gamma_sampler::valid_parameter(alpha[t]) &&
          gamma_sampler::valid_parameter(beta[t])) {
        continue;
      }
      const int64_t e = e0 + t;
      if (!gamma_sampler::valid_parameter(alpha[t]) || !gamma_sampler::valid_parameter(beta[t])) {
        if (first_invalid < 0) first_invalid = e;
        z[e] = std::numeric_limits<scalar_t>::quiet_NaN();
        continue;
      }
      z[e] = static_cast<scalar_t>(gamma_sampler::gamma_sample<scalar_t>(
          a.seed, a.offset, static_cast<uint64_t>(e), alpha[t], beta[t]));
    }
  }
  return first_invalid;
}

template <typename scalar_t>
void gamma_backward_range(const GammaBackwardArgs& a, int64_t begin, int64_t end) {
  constexpr double tolerance = gamma_math::tolerance_for<scalar_t>();
  const auto* grad = static_cast<const scalar_t*>(a.grad);
  const auto* z = static_cast<const scalar_t*>(a.z);
  const auto* concentration = static_cast<const scalar_t*>(a.concentration);
  const auto* rate = static_cast<const scalar_t*>(a.rate);
  auto* grad_concentration = static_cast<scalar_t*>(a.grad_concentration);
  auto* grad_rate = static_cast<scalar_t*>(a.grad_rate);
  constexpr int64_t kTile = kGradTile;
  alignas(64) double alpha[kTile], beta[kTile], standard[kTile], dz[kTile];
  Layout2DCursor at(a.layout, begin % a.sample_numel);
  for (int64_t e0 = begin; e0 < end; e0 += kTile) {
    const int n = static_cast<int>(std::min(kTile, end - e0));
    for (int t = 0; t < n; ++t, at.advance()) {
      alpha[t] = static_cast<double>(concentration[at.offset(0)]);
      beta[t] = static_cast<double>(rate[at.offset(1)]);
      standard[t] = static_cast<double>(z[e0 + t]) * beta[t];
    }
    if (grad_rate != nullptr) {
      for (int t = 0; t < n; ++t) {
        const double g = static_cast<double>(grad[e0 + t]);
        grad_rate[e0 + t] = static_cast<scalar_t>(
            gamma_sampler::grad_rate(g, static_cast<double>(z[e0 + t]), beta[t]));
      }
    }
    if (grad_concentration == nullptr) continue;
    dz_dalpha_tile(alpha, standard, n, tolerance, dz);
    for (int t = 0; t < n; ++t) {
      const double g = static_cast<double>(grad[e0 + t]);
      // grad * gamma_dz_dconcentration: the standard sample's gradient over the rate.
      grad_concentration[e0 + t] = static_cast<scalar_t>(g * (dz[t] / beta[t]));
    }
  }
}

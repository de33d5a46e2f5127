// The CPU Dirichlet kernels, written once and compiled once per instruction set: included
// through per_isa.h by dirichlet_kernel.cpp (no include guard on purpose, no includes of its own
// beyond the shared Gamma lanes).
//
// Forward: the log-Gammas of a task's entries in tiles of kGammaTile, by the Gamma kernels'
// vector first-proposal pass (log space: log_first_samples), the scalar sampler where the
// squeeze rejected; then each row normalized, x_i = exp(l_i - m) / sum_j exp(l_j - m), the
// exps in vector loops and the sum in entry order. Backward: d log g / d alpha of every entry
// by the Gamma kernels' expansion lanes (dz/dalpha / g; below g = 1e-300 the series' first
// term), then each row's x_i (grad_i - sum_j grad_j x_j) D_i. Every value is bitwise
// csrc/common/dirichlet_row.h's, the scalar code the CUDA kernels run.

#include "ops/cpu/gamma_lanes.h"

template <typename scalar_t>
int64_t dirichlet_forward_rows(const DirichletForwardArgs& a, int64_t row_begin,
                               int64_t row_end) {
  using T = at::opmath_type<scalar_t>;
  const auto* concentration = static_cast<const scalar_t*>(a.concentration);
  auto* x = static_cast<scalar_t*>(a.x);
  auto* log_gamma = static_cast<T*>(a.log_gamma);
  const int64_t K = a.categories;
  const int64_t begin = row_begin * K, end = row_end * K;
  const uint64_t key = PhiloxSubstream::key(a.seed, a.offset);
  alignas(64) uint32_t X[kGammaTile], Y[kGammaTile], Z[kGammaTile], W[kGammaTile];
  alignas(64) T alpha[kGammaTile], sample[kGammaTile], log_sample[kGammaTile];
  alignas(64) bool accepted[kGammaTile];
  int64_t first_invalid = -1;
  Layout2DCursor at(a.layout, begin % a.sample_numel);
  for (int64_t e0 = begin; e0 < end; e0 += kGammaTile) {
    const int64_t n = std::min(kGammaTile, end - e0);
    for (int64_t t = 0; t < n; ++t, at.advance()) {
      alpha[t] = static_cast<T>(concentration[at.offset(0)]);
    }
    philox_substream_first_blocks(key, static_cast<uint64_t>(e0), n, X, Y, Z, W);
    first_proposals(alpha, X, Y, Z, n, sample, accepted);
    log_first_samples(alpha, sample, W, n, log_sample);
    for (int64_t t = 0; t < n; ++t) {
      const int64_t e = e0 + t;
      if (!gamma_sampler::valid_parameter(alpha[t])) {
        if (first_invalid < 0) first_invalid = e;
        log_gamma[e] = T(0);
      } else if (accepted[t]) {
        log_gamma[e] = log_sample[t];
      } else {
        PhiloxSubstream words(a.seed, a.offset, static_cast<uint64_t>(e));
        log_gamma[e] = gamma_sampler::log_standard_gamma(words, alpha[t]);
      }
    }
  }
  // Normalization, in blocks of whole rows of at most kGammaTile entries (one row at a time when
  // rows are longer), so that short rows (Beta's two entries) still run the exps in vector
  // loops: per row m = max_i l_i, the exps exp(l_i - m), their sum in entry order, then x_i.
  const int64_t rows_per_block = std::max<int64_t>(1, kGammaTile / K);
  alignas(64) T shifted[kGammaTile], row_max[kGammaTile], entry_max[kGammaTile];
  alignas(64) T inv_sum[kGammaTile];
  for (int64_t row0 = row_begin; row0 < row_end; row0 += rows_per_block) {
    const int64_t rows = std::min(rows_per_block, row_end - row0);
    const T* l = log_gamma + row0 * K;
    scalar_t* out = x + row0 * K;
    if (first_invalid >= 0 && first_invalid < (row0 + rows) * K) {
      // An invalid concentration in the block: the op raises, so the block is only set to NaN.
      for (int64_t t = 0; t < rows * K; ++t) out[t] = static_cast<scalar_t>(NAN);
      continue;
    }
    for (int64_t r = 0; r < rows; ++r) {
      T m = l[r * K];
      for (int64_t i = 1; i < K; ++i) m = l[r * K + i] > m ? l[r * K + i] : m;
      row_max[r] = m;
    }
    if (K <= kGammaTile) {
      const int64_t n = rows * K;
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t i = 0; i < K; ++i) entry_max[r * K + i] = row_max[r];
      }
      for (int64_t t = 0; t < n; ++t) shifted[t] = math::exp(l[t] - entry_max[t]);
      for (int64_t r = 0; r < rows; ++r) {
        T sum = T(0);  // in entry order, as the scalar row code
        for (int64_t i = 0; i < K; ++i) sum += shifted[r * K + i];
        inv_sum[r] = T(1) / sum;
      }
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t i = 0; i < K; ++i) entry_max[r * K + i] = inv_sum[r];  // now 1 / sum
      }
      for (int64_t t = 0; t < n; ++t) {
        shifted[t] = clamp_open_unit<scalar_t>(shifted[t] * entry_max[t]);
      }
      for (int64_t t = 0; t < n; ++t) out[t] = static_cast<scalar_t>(shifted[t]);
      continue;
    }
    // One long row: the exps in chunks, twice (the sum in entry order needs no row buffer).
    const T m = row_max[0];
    T sum = T(0);
    for (int64_t i0 = 0; i0 < K; i0 += kGammaTile) {
      const int64_t n = std::min(kGammaTile, K - i0);
      for (int64_t t = 0; t < n; ++t) shifted[t] = math::exp(l[i0 + t] - m);
      for (int64_t t = 0; t < n; ++t) sum += shifted[t];
    }
    const T inv = T(1) / sum;
    for (int64_t i0 = 0; i0 < K; i0 += kGammaTile) {
      const int64_t n = std::min(kGammaTile, K - i0);
      for (int64_t t = 0; t < n; ++t) {
        const T value = math::exp(l[i0 + t] - m) * inv;
        out[i0 + t] = static_cast<scalar_t>(clamp_open_unit<scalar_t>(value));
      }
    }
  }
  return first_invalid;
}

template <typename scalar_t>
void dirichlet_backward_rows(const DirichletBackwardArgs& a, int64_t row_begin, int64_t row_end) {
  constexpr double tolerance = gamma_math::tolerance_for<scalar_t>();
  const auto* grad = static_cast<const scalar_t*>(a.grad);
  const auto* x = static_cast<const scalar_t*>(a.x);
  const auto* log_gamma = static_cast<const at::opmath_type<scalar_t>*>(a.log_gamma);
  const auto* concentration = static_cast<const scalar_t*>(a.concentration);
  auto* out = static_cast<scalar_t*>(a.grad_concentration);
  const int64_t K = a.categories;
  // Blocks of whole rows of at most kTile entries (one row when rows are longer), so that short
  // rows (Beta's two entries) still fill the gradient lanes; the dots first, then the entries in
  // tiles across the block's rows.
  constexpr int kTile = kGradTile;
  const int64_t rows_per_block = std::max<int64_t>(1, kTile / K);
  alignas(64) double alpha[kTile], g[kTile], dz[kTile], d_log[kTile], dots[kTile];
  for (int64_t row0 = row_begin; row0 < row_end; row0 += rows_per_block) {
    const int64_t rows = std::min(rows_per_block, row_end - row0);
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t e_row = (row0 + r) * K;
      double dot = 0.0;
      for (int64_t j = 0; j < K; ++j) {
        dot += static_cast<double>(grad[e_row + j]) * static_cast<double>(x[e_row + j]);
      }
      dots[r] = dot;
    }
    const int64_t e_end = (row0 + rows) * K;
    Layout2DCursor at(a.layout, (row0 * K) % a.sample_numel);
    int64_t r = 0, in_row = 0;
    for (int64_t e0 = row0 * K; e0 < e_end; e0 += kTile) {
      const int n = static_cast<int>(std::min<int64_t>(kTile, e_end - e0));
      for (int t = 0; t < n; ++t, at.advance()) {
        alpha[t] = static_cast<double>(concentration[at.offset(0)]);
        g[t] = std::exp(static_cast<double>(log_gamma[e0 + t]));
      }
      dz_dalpha_tile(alpha, g, n, tolerance, dz);
      for (int t = 0; t < n; ++t) {  // gamma_math::standard_gamma_dlog_dalpha
        const double a_t = alpha[t];
        const double log_g = static_cast<double>(log_gamma[e0 + t]);
        const bool valid = a_t > 0.0 && a_t <= DBL_MAX && log_g == log_g && log_g < 709.0;
        if (!valid) {
          d_log[t] = NAN;
        } else if (log_g < -690.0) {
          d_log[t] = (gamma_math::digamma(a_t + 1.0) - log_g) / a_t;
        } else {
          d_log[t] = dz[t] / g[t];
        }
      }
      for (int t = 0; t < n; ++t) {
        const int64_t e = e0 + t;
        const double xi = static_cast<double>(x[e]);
        out[e] = static_cast<scalar_t>(xi * (static_cast<double>(grad[e]) - dots[r]) * d_log[t]);
        if (++in_row == K) {
          in_row = 0;
          ++r;
        }
      }
    }
  }
}

// C entry points to csrc/common's Gamma-family maths (gamma_math.h, gamma_sampler.h,
// dirichlet_row.h) for the gamma and dirichlet tests (ctypes, tests/helpers/gamma_shim.py), so
// that the host/device code is checked against mpmath and scipy, and the CPU kernels against
// it, without building an op around it.
#include "common/gamma_math.h"

extern "C" {
double gradext_standard_gamma_dz_dalpha(double alpha, double z) {
  return gradext::gamma_math::standard_gamma_dz_dalpha(alpha, z);
}
double gradext_dz_dalpha_series(double alpha, double z) {
  return gradext::gamma_math::dz_dalpha_series(alpha, z);
}
double gradext_dz_dalpha_continued_fraction(double alpha, double z) {
  return gradext::gamma_math::dz_dalpha_continued_fraction(alpha, z);
}
double gradext_digamma(double x) { return gradext::gamma_math::digamma(x); }
double gradext_standard_gamma_dlog_dalpha(double alpha, double log_z) {
  return gradext::gamma_math::standard_gamma_dlog_dalpha(alpha, log_z);
}
}

#include "common/gamma_sampler.h"

extern "C" {
// Elements first .. first + n - 1 of the call (seed, offset), each from its own sub-stream.
void gradext_standard_gamma_float(float alpha, uint64_t seed, uint64_t offset, uint64_t first,
                                  int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    gradext::PhiloxSubstream words(seed, offset, first + static_cast<uint64_t>(i));
    out[i] = gradext::gamma_sampler::standard_gamma<float>(words, alpha);
  }
}
void gradext_standard_gamma_double(double alpha, uint64_t seed, uint64_t offset, uint64_t first,
                                   int64_t n, double* out) {
  for (int64_t i = 0; i < n; ++i) {
    gradext::PhiloxSubstream words(seed, offset, first + static_cast<uint64_t>(i));
    out[i] = gradext::gamma_sampler::standard_gamma<double>(words, alpha);
  }
}
}

#include "common/dirichlet_row.h"

extern "C" {
// dirichlet_row::sample and ::backward (the code the CUDA kernels run) on one row of K entries,
// the first being flat output element `first`, in double.
int64_t gradext_dirichlet_row_double(const double* alpha, int64_t categories, uint64_t seed,
                                     uint64_t offset, uint64_t first, double* x,
                                     double* log_gamma) {
  return gradext::dirichlet_row::sample<double, double>(
      seed, offset, first, categories, [&](int64_t i) { return alpha[i]; }, x, log_gamma);
}
void gradext_dirichlet_row_backward_double(const double* grad, const double* x,
                                           const double* log_gamma, const double* alpha,
                                           int64_t categories, double* out) {
  gradext::dirichlet_row::backward(grad, x, log_gamma, categories,
                                   [&](int64_t i) { return alpha[i]; },
                                   gradext::gamma_math::kTolerance, out);
}
}

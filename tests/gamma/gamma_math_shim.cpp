// C entry points to csrc/common/gamma_math.h for tests/gamma/test_gamma_math.py (ctypes), so
// that the host/device maths is checked against mpmath without building an op around it.
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

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
}

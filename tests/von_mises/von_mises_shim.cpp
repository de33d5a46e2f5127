// C entry points to csrc/common's von Mises maths (von_mises_sampler.h, von_mises_math.h) for
// the von Mises tests (ctypes, tests/helpers/von_mises_shim.py): the scalar header code the CUDA
// kernels run, against which the CPU kernels' vector passes are checked bitwise.
#include "common/von_mises_sampler.h"

extern "C" {
// Elements first .. first + n - 1 of the call (seed, offset), each from its own sub-stream, at
// one (loc, concentration).
void gradext_von_mises_float(float loc, float kappa, uint64_t seed, uint64_t offset,
                             uint64_t first, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    out[i] = gradext::von_mises_sampler::von_mises_sample<float>(
        seed, offset, first + static_cast<uint64_t>(i), loc, kappa);
  }
}
void gradext_von_mises_double(double loc, double kappa, uint64_t seed, uint64_t offset,
                              uint64_t first, int64_t n, double* out) {
  for (int64_t i = 0; i < n; ++i) {
    out[i] = gradext::von_mises_sampler::von_mises_sample<double>(
        seed, offset, first + static_cast<uint64_t>(i), loc, kappa);
  }
}
double gradext_von_mises_ddelta_dkappa(double kappa, double delta) {
  return gradext::von_mises_math::von_mises_ddelta_dkappa(kappa, delta);
}
// The vectorizable double functions the backward's lanes use (scalar_math.h).
double gradext_exp_vectorizable(double x) { return gradext::math::exp_vectorizable(x); }
double gradext_sin_quarter_turn(double u) { return gradext::math::sin_quarter_turn(u); }
}

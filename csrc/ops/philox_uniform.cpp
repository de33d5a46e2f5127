// _philox_uniform: the uniforms of the random-number contract, for tests. Element i of the
// result is the uniform the kernels derive from Philox word i for `like`'s dtype (the float grid
// for float32/float16/bfloat16, the double grid for float64), returned exactly in float64, so
// that a test can rebuild any op's noise (normal, Gumbel, logistic) in float64.
#include <ATen/ATen.h>
#include <torch/library.h>

#include "common/philox.h"
#include "common/random_transforms.h"

namespace gradext::ops {
namespace {

at::Tensor philox_uniform_cpu(const at::Tensor& like, int64_t seed, int64_t offset) {
  at::Tensor out = at::empty(like.sizes(), like.options().dtype(at::kDouble));
  const auto stream =
      PhiloxStream::make(static_cast<uint64_t>(seed), static_cast<uint64_t>(offset));
  const bool double_grid = like.scalar_type() == at::kDouble;
  double* u = out.data_ptr<double>();
  for (int64_t i = 0; i < out.numel(); ++i) {
    const uint32_t bits = philox_word_at(stream, static_cast<uint64_t>(i));
    u[i] = double_grid ? uniform_open(bits, 0.0) : static_cast<double>(uniform_open(bits, 0.0f));
  }
  return out;
}

}  // namespace
}  // namespace gradext::ops

TORCH_LIBRARY_FRAGMENT(gradext, m) {
  // The fake kernels and autograd formulas of these ops live in this Python module.
  m.set_python_module("gradext.philox_uniform");
  m.def("_philox_uniform(Tensor like, int seed, int offset) -> Tensor");
}

TORCH_LIBRARY_IMPL(gradext, CPU, m) {
  m.impl("_philox_uniform", &gradext::ops::philox_uniform_cpu);
}

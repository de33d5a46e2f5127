#include "ops/von_mises.h"

#include <ATen/ATen.h>
#include <torch/library.h>

#include <utility>

#include "ops/two_parameter_problem.h"

namespace gradext::ops {

VonMisesForwardProblem make_von_mises_forward_problem(const at::Tensor& loc,
                                                      const at::Tensor& concentration,
                                                      std::optional<int64_t> num_samples) {
  TwoParameterForward p = make_two_parameter_forward("von_mises_rsample", "loc", loc,
                                                     "concentration", concentration, num_samples);
  return {std::move(p.first), std::move(p.second), p.layout, std::move(p.out_shape),
          p.sample_numel};
}

VonMisesBackwardProblem make_von_mises_backward_problem(const at::Tensor& grad,
                                                        const at::Tensor& x,
                                                        const at::Tensor& loc,
                                                        const at::Tensor& concentration) {
  TwoParameterBackward p = make_two_parameter_backward("_von_mises_rsample_backward", grad, "x",
                                                       x, "loc", loc, "concentration",
                                                       concentration);
  return {std::move(p.grad), std::move(p.sample), std::move(p.first), std::move(p.second),
          p.layout, p.sample_numel};
}

void throw_invalid_von_mises_parameter(const InvalidVonMisesParameter& invalid) {
  TORCH_CHECK_VALUE(false, "von_mises_rsample: ",
                    invalid.is_concentration ? "concentration must be positive and finite"
                                             : "loc must be finite",
                    ", got ", invalid.value, " (at flat position ", invalid.position,
                    " of the broadcast parameters)");
}

}  // namespace gradext::ops

TORCH_LIBRARY_FRAGMENT(gradext, m) {
  // The fake kernels and autograd formulas of these ops live in this Python module.
  m.set_python_module("gradext.von_mises");
  // x ~ von Mises(loc, concentration) in [-pi, pi), shape (num_samples, *broadcast) or
  // broadcast. Each element draws from its own Philox sub-stream of the call's (seed, offset)
  // (csrc/common/philox.h).
  m.def(
      "von_mises_rsample(Tensor loc, Tensor concentration, SymInt? num_samples=None, *, "
      "Generator? generator=None) -> Tensor",
      {at::Tag::nondeterministic_seeded});
  // The same with the Philox (seed, offset) given: deterministic, for tests and for
  // cross-device comparisons of the samples.
  m.def(
      "_von_mises_rsample_seeded(Tensor loc, Tensor concentration, SymInt? num_samples, int seed, "
      "int offset) -> Tensor");
  // Fused backward, elementwise over x's shape (the caller sums to concentration's shape):
  // grad * dx/dconcentration in grad's dtype, the implicit gradient read from the saved sample
  // x. (dx/dloc = 1: the loc gradient is grad itself, summed by the caller.)
  m.def(
      "_von_mises_rsample_backward(Tensor grad, Tensor x, Tensor loc, Tensor concentration) -> "
      "Tensor");
}

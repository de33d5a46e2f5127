#include "ops/gamma.h"

#include <ATen/ATen.h>
#include <torch/library.h>

#include <utility>

#include "ops/two_parameter_problem.h"

namespace gradext::ops {

GammaForwardProblem make_gamma_forward_problem(const at::Tensor& concentration,
                                               const at::Tensor& rate,
                                               std::optional<int64_t> num_samples) {
  TwoParameterForward p = make_two_parameter_forward("gamma_rsample", "concentration",
                                                     concentration, "rate", rate, num_samples);
  return {std::move(p.first), std::move(p.second), p.layout, std::move(p.out_shape),
          p.sample_numel};
}

GammaBackwardProblem make_gamma_backward_problem(const at::Tensor& grad, const at::Tensor& z,
                                                 const at::Tensor& concentration,
                                                 const at::Tensor& rate) {
  TwoParameterBackward p = make_two_parameter_backward(
      "_gamma_rsample_backward", grad, "z", z, "concentration", concentration, "rate", rate);
  return {std::move(p.grad), std::move(p.sample), std::move(p.first), std::move(p.second),
          p.layout, p.sample_numel};
}

std::tuple<at::Tensor, at::Tensor> empty_gamma_grads(const GammaBackwardProblem& p,
                                                     std::array<bool, 2> output_mask) {
  const auto output = [&](bool wanted) {
    return at::empty(wanted ? p.z.sizes() : at::IntArrayRef({0}), p.grad.options());
  };
  return {output(output_mask[0]), output(output_mask[1])};
}

void throw_invalid_gamma_parameter(const InvalidGammaParameter& invalid) {
  TORCH_CHECK_VALUE(false, "gamma_rsample: ", invalid.is_rate ? "rate" : "concentration",
                    " must be positive and finite, got ", invalid.value,
                    " (at flat position ", invalid.position, " of the broadcast parameters)");
}

}  // namespace gradext::ops

TORCH_LIBRARY_FRAGMENT(gradext, m) {
  // The fake kernels and autograd formulas of these ops live in this Python module.
  m.set_python_module("gradext.gamma");
  // z ~ Gamma(concentration, rate), shape (num_samples, *broadcast) or broadcast. Each element
  // draws from its own Philox sub-stream of the call's (seed, offset) (csrc/common/philox.h).
  m.def(
      "gamma_rsample(Tensor concentration, Tensor rate, SymInt? num_samples=None, *, "
      "Generator? generator=None) -> Tensor",
      {at::Tag::nondeterministic_seeded});
  // The same with the Philox (seed, offset) given: deterministic, for tests and for
  // cross-device comparisons of the samples.
  m.def(
      "_gamma_rsample_seeded(Tensor concentration, Tensor rate, SymInt? num_samples, int seed, "
      "int offset) -> Tensor");
  // Fused backward, elementwise over z's shape (the caller sums to each parameter's shape):
  // (grad * dz/dconcentration, grad * dz/drate) in grad's dtype, with dz/dconcentration the
  // implicit gradient read from the saved sample z. output_mask says which of the two to
  // compute; an output not asked for comes back empty.
  m.def(
      "_gamma_rsample_backward(Tensor grad, Tensor z, Tensor concentration, Tensor rate, "
      "bool[2] output_mask) -> (Tensor, Tensor)");
}

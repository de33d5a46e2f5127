#include "ops/gamma.h"

#include <ATen/ATen.h>
#include <torch/library.h>

#include "ops/argument_checks.h"
#include "ops/broadcast_layout.h"

namespace gradext::ops {

GammaForwardProblem make_gamma_forward_problem(const at::Tensor& concentration,
                                               const at::Tensor& rate,
                                               std::optional<int64_t> num_samples) {
  constexpr const char* op = "gamma_rsample";
  check_floating(concentration, op, "concentration");
  check_floating(rate, op, "rate");
  check_same_device(concentration, "concentration", rate, "rate", op);
  TORCH_CHECK_VALUE(!num_samples.has_value() || *num_samples >= 1, op,
                    ": num_samples must be None or >= 1, got ", num_samples.value_or(0));

  GammaForwardProblem p;
  const std::vector<int64_t> sample_shape =
      broadcast_parameter_shape(op, "concentration", concentration, "rate", rate);
  const at::ScalarType dtype = at::promote_types(concentration.scalar_type(), rate.scalar_type());
  p.sample_numel = c10::multiply_integers(sample_shape);
  if (num_samples.has_value()) p.out_shape.push_back(*num_samples);
  p.out_shape.insert(p.out_shape.end(), sample_shape.begin(), sample_shape.end());
  std::vector<at::Tensor> inputs{concentration.to(dtype), rate.to(dtype)};
  p.layout = make_layout_2d(sample_shape, inputs);
  p.concentration = inputs[0];
  p.rate = inputs[1];
  return p;
}

GammaBackwardProblem make_gamma_backward_problem(const at::Tensor& grad, const at::Tensor& z,
                                                 const at::Tensor& concentration,
                                                 const at::Tensor& rate) {
  constexpr const char* op = "_gamma_rsample_backward";
  check_floating(grad, op, "grad");
  check_floating(z, op, "z");
  check_floating(concentration, op, "concentration");
  check_floating(rate, op, "rate");
  check_same_device(grad, "grad", z, "z", op);
  check_same_device(z, "z", concentration, "concentration", op);
  check_same_device(z, "z", rate, "rate", op);
  TORCH_CHECK_VALUE(grad.sizes().equals(z.sizes()), op, ": grad of shape ", grad.sizes(),
                    " must have z's shape ", z.sizes());
  const int64_t rank = std::max(concentration.dim(), rate.dim());
  TORCH_CHECK_VALUE(rank <= z.dim(), op, ": concentration of shape ", concentration.sizes(),
                    " and rate of shape ", rate.sizes(), " have more dimensions than z ",
                    z.sizes());
  const at::IntArrayRef sample_shape = z.sizes().slice(z.dim() - rank);
  for (const auto& [name, t] : {std::pair<const char*, const at::Tensor&>{"concentration",
                                                                          concentration},
                                {"rate", rate}}) {
    TORCH_CHECK_VALUE(at::is_expandable_to(t.sizes(), sample_shape), op, ": ", name,
                      " of shape ", t.sizes(), " does not broadcast to z's trailing shape ",
                      sample_shape);
  }
  GammaBackwardProblem p;
  const at::ScalarType dtype = grad.scalar_type();
  p.grad = grad.contiguous();
  p.z = z.to(dtype).contiguous();
  p.sample_numel = c10::multiply_integers(sample_shape);
  std::vector<at::Tensor> inputs{concentration.to(dtype), rate.to(dtype)};
  p.layout = make_layout_2d(sample_shape, inputs);
  p.concentration = inputs[0];
  p.rate = inputs[1];
  return p;
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

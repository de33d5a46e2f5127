#include "ops/von_mises.h"

#include <ATen/ATen.h>
#include <torch/library.h>

#include "ops/argument_checks.h"
#include "ops/broadcast_layout.h"

namespace gradext::ops {

VonMisesForwardProblem make_von_mises_forward_problem(const at::Tensor& loc,
                                                      const at::Tensor& concentration,
                                                      std::optional<int64_t> num_samples) {
  constexpr const char* op = "von_mises_rsample";
  check_floating(loc, op, "loc");
  check_floating(concentration, op, "concentration");
  check_same_device(loc, "loc", concentration, "concentration", op);
  TORCH_CHECK_VALUE(!num_samples.has_value() || *num_samples >= 1, op,
                    ": num_samples must be None or >= 1, got ", num_samples.value_or(0));

  VonMisesForwardProblem p;
  const std::vector<int64_t> sample_shape =
      broadcast_parameter_shape(op, "loc", loc, "concentration", concentration);
  const at::ScalarType dtype = at::promote_types(loc.scalar_type(), concentration.scalar_type());
  p.sample_numel = c10::multiply_integers(sample_shape);
  if (num_samples.has_value()) p.out_shape.push_back(*num_samples);
  p.out_shape.insert(p.out_shape.end(), sample_shape.begin(), sample_shape.end());
  std::vector<at::Tensor> inputs{loc.to(dtype), concentration.to(dtype)};
  p.layout = make_layout_2d(sample_shape, inputs);
  p.loc = inputs[0];
  p.concentration = inputs[1];
  return p;
}

VonMisesBackwardProblem make_von_mises_backward_problem(const at::Tensor& grad,
                                                        const at::Tensor& x,
                                                        const at::Tensor& loc,
                                                        const at::Tensor& concentration) {
  constexpr const char* op = "_von_mises_rsample_backward";
  check_floating(grad, op, "grad");
  check_floating(x, op, "x");
  check_floating(loc, op, "loc");
  check_floating(concentration, op, "concentration");
  check_same_device(grad, "grad", x, "x", op);
  check_same_device(x, "x", loc, "loc", op);
  check_same_device(x, "x", concentration, "concentration", op);
  TORCH_CHECK_VALUE(grad.sizes().equals(x.sizes()), op, ": grad of shape ", grad.sizes(),
                    " must have x's shape ", x.sizes());
  const int64_t rank = std::max(loc.dim(), concentration.dim());
  TORCH_CHECK_VALUE(rank <= x.dim(), op, ": loc of shape ", loc.sizes(),
                    " and concentration of shape ", concentration.sizes(),
                    " have more dimensions than x ", x.sizes());
  const at::IntArrayRef sample_shape = x.sizes().slice(x.dim() - rank);
  for (const auto& [name, t] :
       {std::pair<const char*, const at::Tensor&>{"loc", loc}, {"concentration", concentration}}) {
    TORCH_CHECK_VALUE(at::is_expandable_to(t.sizes(), sample_shape), op, ": ", name,
                      " of shape ", t.sizes(), " does not broadcast to x's trailing shape ",
                      sample_shape);
  }
  VonMisesBackwardProblem p;
  const at::ScalarType dtype = grad.scalar_type();
  p.grad = grad.contiguous();
  p.x = x.to(dtype).contiguous();
  p.sample_numel = c10::multiply_integers(sample_shape);
  std::vector<at::Tensor> inputs{loc.to(dtype), concentration.to(dtype)};
  p.layout = make_layout_2d(sample_shape, inputs);
  p.loc = inputs[0];
  p.concentration = inputs[1];
  return p;
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

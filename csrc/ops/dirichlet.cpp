#include "ops/dirichlet.h"

#include <ATen/ATen.h>
#include <ATen/ExpandUtils.h>
#include <torch/library.h>

#include "ops/argument_checks.h"
#include "ops/broadcast_layout.h"

namespace gradext::ops {
namespace {

void check_categories(const at::Tensor& concentration, const char* op) {
  TORCH_CHECK_VALUE(concentration.dim() >= 1 && concentration.size(-1) >= 2, op,
                    ": concentration must have at least 2 categories along its last dimension "
                    "(the simplex), got shape ",
                    concentration.sizes());
}

}  // namespace

DirichletForwardProblem make_dirichlet_forward_problem(const at::Tensor& concentration,
                                                       std::optional<int64_t> num_samples) {
  constexpr const char* op = "dirichlet_rsample";
  check_floating(concentration, op, "concentration");
  check_categories(concentration, op);
  TORCH_CHECK_VALUE(!num_samples.has_value() || *num_samples >= 1, op,
                    ": num_samples must be None or >= 1, got ", num_samples.value_or(0));
  DirichletForwardProblem p;
  const at::IntArrayRef sample_shape = concentration.sizes();
  p.sample_numel = concentration.numel();
  p.categories = concentration.size(-1);
  if (num_samples.has_value()) p.out_shape.push_back(*num_samples);
  p.out_shape.insert(p.out_shape.end(), sample_shape.begin(), sample_shape.end());
  p.log_gamma_dtype =
      concentration.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  std::vector<at::Tensor> inputs{concentration};
  p.layout = make_layout_2d(sample_shape, inputs);
  p.concentration = inputs[0];
  return p;
}

DirichletBackwardProblem make_dirichlet_backward_problem(const at::Tensor& grad,
                                                         const at::Tensor& x,
                                                         const at::Tensor& log_gamma,
                                                         const at::Tensor& concentration) {
  constexpr const char* op = "_dirichlet_rsample_backward";
  check_floating(grad, op, "grad");
  check_floating(x, op, "x");
  check_floating(log_gamma, op, "log_gamma");
  check_floating(concentration, op, "concentration");
  check_categories(concentration, op);
  check_same_device(x, "x", grad, "grad", op);
  check_same_device(x, "x", log_gamma, "log_gamma", op);
  check_same_device(x, "x", concentration, "concentration", op);
  TORCH_CHECK_VALUE(grad.sizes().equals(x.sizes()) && log_gamma.sizes().equals(x.sizes()), op,
                    ": grad of shape ", grad.sizes(), " and log_gamma of shape ",
                    log_gamma.sizes(), " must have x's shape ", x.sizes());
  TORCH_CHECK_VALUE(concentration.dim() <= x.dim(), op, ": concentration of shape ",
                    concentration.sizes(), " has more dimensions than x ", x.sizes());
  const at::IntArrayRef sample_shape = x.sizes().slice(x.dim() - concentration.dim());
  TORCH_CHECK_VALUE(at::is_expandable_to(concentration.sizes(), sample_shape) &&
                        concentration.size(-1) == x.size(-1),
                    op, ": concentration of shape ", concentration.sizes(),
                    " does not broadcast to x's trailing shape ", sample_shape,
                    " with the same number of categories");
  DirichletBackwardProblem p;
  const at::ScalarType dtype = x.scalar_type();
  p.grad = grad.to(dtype).contiguous();
  p.x = x.contiguous();
  // The kernels read the logs in the math type, the forward's (float, or double for double).
  p.log_gamma = log_gamma.to(dtype == at::kDouble ? at::kDouble : at::kFloat).contiguous();
  p.sample_numel = c10::multiply_integers(sample_shape);
  p.categories = x.size(-1);
  std::vector<at::Tensor> inputs{concentration.to(dtype)};
  p.layout = make_layout_2d(sample_shape, inputs);
  p.concentration = inputs[0];
  return p;
}

void throw_invalid_dirichlet_concentration(double value, int64_t position) {
  TORCH_CHECK_VALUE(false, "dirichlet_rsample: concentration must be positive and finite, got ",
                    value, " (at flat position ", position, ")");
}

}  // namespace gradext::ops

TORCH_LIBRARY_FRAGMENT(gradext, m) {
  // The fake kernels and autograd formulas of these ops live in this Python module.
  m.set_python_module("gradext.dirichlet");
  // x ~ Dirichlet(concentration) along the last dimension, shape (num_samples, *concentration)
  // or concentration's. Returns (x, log_gamma): log_gamma holds the log of each entry's Gamma
  // draw (in float32, or float64 for float64), all the backward needs besides x.
  m.def(
      "dirichlet_rsample(Tensor concentration, SymInt? num_samples=None, *, "
      "Generator? generator=None) -> (Tensor, Tensor)",
      {at::Tag::nondeterministic_seeded});
  // The same with the Philox (seed, offset) given: deterministic, for tests.
  m.def(
      "_dirichlet_rsample_seeded(Tensor concentration, SymInt? num_samples, int seed, "
      "int offset) -> (Tensor, Tensor)");
  // Fused backward, per row over x's shape (the caller sums to concentration's shape):
  // x_i (grad_i - sum_j grad_j x_j) d log g_i / d alpha_i, in x's dtype.
  m.def(
      "_dirichlet_rsample_backward(Tensor grad, Tensor x, Tensor log_gamma, "
      "Tensor concentration) -> Tensor");
}

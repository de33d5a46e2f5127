// Autograd of the Dirichlet sampling ops (dirichlet_rsample and its seeded twin), registered in
// C++ at the Autograd key (see csrc/ops/gaussian_autograd.cpp for why). torch.func refuses C++
// autograd Functions, so under its transforms gradext/dirichlet.py applies the same formula in
// Python (_sample_setup_context / _sample_backward: change both together; the contract tests
// compare them bitwise).
//
//   x = normalize(g), g_i ~ Gamma(alpha_i, 1)
//   grad_concentration = x_i (grad_i - sum_j grad_j x_j) d log g_i / d alpha_i (fused row
//                        kernel reading the saved x and log g), summed to concentration's shape
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include "ops/autograd_support.h"

namespace gradext::ops {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

at::Tensor call_backward_op(const at::Tensor& grad, const at::Tensor& x,
                            const at::Tensor& log_gamma, const at::Tensor& concentration) {
  static const auto op = typed_op<at::Tensor(const at::Tensor&, const at::Tensor&,
                                             const at::Tensor&, const at::Tensor&)>(
      "gradext::_dirichlet_rsample_backward");
  BelowAutogradUnlessRecording below_autograd;
  return op.call(grad, x, log_gamma, concentration);
}

struct DirichletSample : torch::autograd::Function<DirichletSample> {
  // `sample` runs the sampling op below autograd and returns its (x, log_gamma).
  template <class Sample>
  static variable_list forward(AutogradContext* ctx, const at::Tensor& concentration,
                               const Sample& sample) {
    auto [x, log_gamma] = sample();
    // The backward reads the sample and its log-Gammas: no rejection loop is run again.
    ctx->save_for_backward({concentration, x, log_gamma});
    ctx->mark_non_differentiable({log_gamma});
    return {x, log_gamma};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& concentration = saved[0];
    at::Tensor grad_concentration = call_backward_op(grads[0], saved[1], saved[2], concentration);
    grad_concentration = grad_concentration.sum_to_size_symint(concentration.sym_sizes())
                             .to(concentration.scalar_type());
    // One gradient per forward argument after ctx: concentration, sample.
    return {grad_concentration, at::Tensor()};
  }
};

std::tuple<at::Tensor, at::Tensor> dirichlet_rsample_autograd(
    const at::Tensor& concentration, std::optional<c10::SymInt> num_samples,
    std::optional<at::Generator> generator) {
  static const auto op = typed_op<std::tuple<at::Tensor, at::Tensor>(
      const at::Tensor&, std::optional<c10::SymInt>, std::optional<at::Generator>)>(
      "gradext::dirichlet_rsample");
  return as_pair(DirichletSample::apply(concentration, [&] {
    return call_below_autograd(op, concentration, num_samples, generator);
  }));
}

std::tuple<at::Tensor, at::Tensor> dirichlet_rsample_seeded_autograd(
    const at::Tensor& concentration, std::optional<c10::SymInt> num_samples, int64_t seed,
    int64_t offset) {
  static const auto op = typed_op<std::tuple<at::Tensor, at::Tensor>(
      const at::Tensor&, std::optional<c10::SymInt>, int64_t, int64_t)>(
      "gradext::_dirichlet_rsample_seeded");
  return as_pair(DirichletSample::apply(concentration, [&] {
    return call_below_autograd(op, concentration, num_samples, seed, offset);
  }));
}

}  // namespace
}  // namespace gradext::ops

TORCH_LIBRARY_IMPL(gradext, Autograd, m) {
  m.impl("dirichlet_rsample", &gradext::ops::dirichlet_rsample_autograd);
  m.impl("_dirichlet_rsample_seeded", &gradext::ops::dirichlet_rsample_seeded_autograd);
}

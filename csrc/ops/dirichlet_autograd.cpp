// Autograd of the Dirichlet sampling ops (dirichlet_rsample and its seeded twin), registered in
// C++ at the Autograd key as a plain graph node (csrc/ops/autograd_node.h says why). Under
// torch.func's transforms gradext/dirichlet.py applies the same formula in Python
// (_sample_setup_context / _sample_backward: change both together; the contract tests compare
// them bitwise).
//
//   x = normalize(g), g_i ~ Gamma(alpha_i, 1)
//   grad_concentration = x_i (grad_i - sum_j grad_j x_j) d log g_i / d alpha_i (fused row
//                        kernel reading the saved x and log g), summed to concentration's shape
#include <torch/library.h>

#include <mutex>

#include "ops/autograd_node.h"
#include "ops/autograd_support.h"

namespace gradext::ops {
namespace {

using torch::autograd::SavedVariable;
using torch::autograd::variable_list;

at::Tensor call_backward_op(const at::Tensor& grad, const at::Tensor& x,
                            const at::Tensor& log_gamma, const at::Tensor& concentration) {
  static const auto op = typed_op<at::Tensor(const at::Tensor&, const at::Tensor&,
                                             const at::Tensor&, const at::Tensor&)>(
      "gradext::_dirichlet_rsample_backward");
  BelowAutogradUnlessRecording below_autograd;
  return op.call(grad, x, log_gamma, concentration);
}

// Next edge: concentration; one input, the gradient of x (log_gamma is not differentiable).
struct DirichletSampleBackward : torch::autograd::Node {
  SavedVariable concentration;
  // The backward reads the sample and its log-Gammas: no rejection loop is run again.
  SavedVariable x;
  SavedVariable log_gamma;

  std::string name() const override { return "gradext::dirichlet_rsampleBackward"; }

  void release_variables() override {
    std::lock_guard<std::mutex> lock(mutex_);
    concentration.reset_data();
    x.reset_data();
    log_gamma.reset_data();
  }

  variable_list apply(variable_list&& grads) override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!grads[0].defined() || !task_should_compute_output(0)) return {at::Tensor()};
    const at::Tensor alpha = concentration.unpack();
    const at::Tensor grad_concentration =
        call_backward_op(grads[0], x.unpack(getptr()), log_gamma.unpack(), alpha);
    return {
        as_dtype(grad_concentration.sum_to_size_symint(alpha.sym_sizes()), alpha.scalar_type())};
  }
};

// `sample` (the op below autograd, returning (x, log_gamma)), then the node that differentiates
// it where there is a gradient to track.
template <class Sample>
std::tuple<at::Tensor, at::Tensor> with_autograd(const at::Tensor& concentration,
                                                 const Sample& sample) {
  check_no_forward_grad("dirichlet_rsample", concentration);
  if (!tracks_grad(concentration)) return sample();
  auto [x, log_gamma] = sample();
  auto node = make_node_for<DirichletSampleBackward>(concentration);
  node->concentration = SavedVariable(concentration, /*is_output=*/false);
  torch::autograd::set_history(x, node);
  node->x = SavedVariable(x, /*is_output=*/true);
  node->log_gamma = SavedVariable(log_gamma, /*is_output=*/false);
  return {x, log_gamma};
}

std::tuple<at::Tensor, at::Tensor> dirichlet_rsample_autograd(
    const at::Tensor& concentration, std::optional<c10::SymInt> num_samples,
    std::optional<at::Generator> generator) {
  static const auto op = typed_op<std::tuple<at::Tensor, at::Tensor>(
      const at::Tensor&, std::optional<c10::SymInt>, std::optional<at::Generator>)>(
      "gradext::dirichlet_rsample");
  return with_autograd(concentration, [&] {
    return call_below_autograd(op, concentration, num_samples, generator);
  });
}

std::tuple<at::Tensor, at::Tensor> dirichlet_rsample_seeded_autograd(
    const at::Tensor& concentration, std::optional<c10::SymInt> num_samples, int64_t seed,
    int64_t offset) {
  static const auto op = typed_op<std::tuple<at::Tensor, at::Tensor>(
      const at::Tensor&, std::optional<c10::SymInt>, int64_t, int64_t)>(
      "gradext::_dirichlet_rsample_seeded");
  return with_autograd(concentration, [&] {
    return call_below_autograd(op, concentration, num_samples, seed, offset);
  });
}

}  // namespace
}  // namespace gradext::ops

TORCH_LIBRARY_IMPL(gradext, Autograd, m) {
  m.impl("dirichlet_rsample", &gradext::ops::dirichlet_rsample_autograd);
  m.impl("_dirichlet_rsample_seeded", &gradext::ops::dirichlet_rsample_seeded_autograd);
}

// Autograd of the Gamma sampling ops (gamma_rsample and its seeded twin), registered in C++ at
// the Autograd key as a plain graph node (csrc/ops/autograd_node.h says why). Under
// torch.func's transforms gradext/gamma.py applies the same formula in Python
// (_sample_setup_context / _sample_backward: change both together; the contract tests compare
// them bitwise). The derivative of the fused backward and the vmap rules are in gradext/gamma.py
// only.
//
//   z = standard_gamma(concentration) / rate
//   grad_concentration = grad * dz/dconcentration (implicit, from the saved z), summed to
//                        concentration's shape
//   grad_rate          = -grad * z / rate, summed to rate's shape
#include <torch/library.h>

#include <mutex>

#include "ops/autograd_node.h"
#include "ops/autograd_support.h"

namespace gradext::ops {
namespace {

using torch::autograd::SavedVariable;
using torch::autograd::variable_list;

std::tuple<at::Tensor, at::Tensor> call_backward_op(const at::Tensor& grad, const at::Tensor& z,
                                                    const at::Tensor& concentration,
                                                    const at::Tensor& rate,
                                                    std::array<bool, 2> output_mask) {
  static const auto op = typed_op<std::tuple<at::Tensor, at::Tensor>(
      const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
      std::array<bool, 2>)>("gradext::_gamma_rsample_backward");
  BelowAutogradUnlessRecording below_autograd;
  return op.call(grad, z, concentration, rate, output_mask);
}

// Next edges (concentration, rate); one input, the gradient of z.
struct GammaSampleBackward : torch::autograd::Node {
  SavedVariable concentration;
  SavedVariable rate;
  // The backward reads the sample itself: no rejection loop is run again.
  SavedVariable z;

  std::string name() const override { return "gradext::gamma_rsampleBackward"; }

  void release_variables() override {
    std::lock_guard<std::mutex> lock(mutex_);
    concentration.reset_data();
    rate.reset_data();
    z.reset_data();
  }

  variable_list apply(variable_list&& grads) override {
    std::lock_guard<std::mutex> lock(mutex_);
    const bool need_concentration = task_should_compute_output(0);
    const bool need_rate = task_should_compute_output(1);
    if (!grads[0].defined() || !(need_concentration || need_rate)) return {{}, {}};
    const at::Tensor alpha = concentration.unpack();
    const at::Tensor beta = rate.unpack();
    auto [grad_concentration, grad_rate] = call_backward_op(
        grads[0], z.unpack(getptr()), alpha, beta, {need_concentration, need_rate});
    if (need_concentration) {
      grad_concentration = as_dtype(grad_concentration.sum_to_size_symint(alpha.sym_sizes()),
                                    alpha.scalar_type());
    }
    if (need_rate) {
      grad_rate = as_dtype(grad_rate.sum_to_size_symint(beta.sym_sizes()), beta.scalar_type());
    }
    return {need_concentration ? grad_concentration : at::Tensor(),
            need_rate ? grad_rate : at::Tensor()};
  }
};

// `sample` (the op below autograd), then the node that differentiates it where there is a
// gradient to track.
template <class Sample>
at::Tensor with_autograd(const at::Tensor& concentration, const at::Tensor& rate,
                         const Sample& sample) {
  check_no_forward_grad("gamma_rsample", concentration, rate);
  if (!tracks_grad(concentration, rate)) return sample();
  at::Tensor z = sample();
  auto node = make_node_for<GammaSampleBackward>(concentration, rate);
  node->concentration = SavedVariable(concentration, /*is_output=*/false);
  node->rate = SavedVariable(rate, /*is_output=*/false);
  torch::autograd::set_history(z, node);
  node->z = SavedVariable(z, /*is_output=*/true);
  return z;
}

at::Tensor gamma_rsample_autograd(const at::Tensor& concentration, const at::Tensor& rate,
                                  std::optional<c10::SymInt> num_samples,
                                  std::optional<at::Generator> generator) {
  static const auto op = typed_op<at::Tensor(const at::Tensor&, const at::Tensor&,
                                             std::optional<c10::SymInt>,
                                             std::optional<at::Generator>)>(
      "gradext::gamma_rsample");
  return with_autograd(concentration, rate, [&] {
    return call_below_autograd(op, concentration, rate, num_samples, generator);
  });
}

at::Tensor gamma_rsample_seeded_autograd(const at::Tensor& concentration, const at::Tensor& rate,
                                         std::optional<c10::SymInt> num_samples, int64_t seed,
                                         int64_t offset) {
  static const auto op = typed_op<at::Tensor(const at::Tensor&, const at::Tensor&,
                                             std::optional<c10::SymInt>, int64_t, int64_t)>(
      "gradext::_gamma_rsample_seeded");
  return with_autograd(concentration, rate, [&] {
    return call_below_autograd(op, concentration, rate, num_samples, seed, offset);
  });
}

}  // namespace
}  // namespace gradext::ops

TORCH_LIBRARY_IMPL(gradext, Autograd, m) {
  m.impl("gamma_rsample", &gradext::ops::gamma_rsample_autograd);
  m.impl("_gamma_rsample_seeded", &gradext::ops::gamma_rsample_seeded_autograd);
}

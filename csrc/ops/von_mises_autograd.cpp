// Autograd of the von Mises sampling ops (von_mises_rsample and its seeded twin), registered in
// C++ at the Autograd key as a plain graph node (csrc/ops/autograd_node.h says why). Under
// torch.func's transforms gradext/von_mises.py applies the same formula in Python
// (_sample_setup_context / _sample_backward: change both together; the contract tests compare
// them bitwise). The derivative of the fused backward and the vmap rules are in
// gradext/von_mises.py only.
//
//   x = wrap(loc + delta),  delta ~ von Mises(0, concentration)
//   grad_loc           = grad, summed to loc's shape
//   grad_concentration = grad * d delta / d concentration (implicit, from the saved x), summed
//                        to concentration's shape
#include <torch/library.h>

#include <mutex>

#include "ops/autograd_node.h"
#include "ops/autograd_support.h"

namespace gradext::ops {
namespace {

using torch::autograd::SavedVariable;
using torch::autograd::variable_list;

at::Tensor call_backward_op(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& loc,
                            const at::Tensor& concentration) {
  static const auto op = typed_op<at::Tensor(const at::Tensor&, const at::Tensor&,
                                             const at::Tensor&, const at::Tensor&)>(
      "gradext::_von_mises_rsample_backward");
  BelowAutogradUnlessRecording below_autograd;
  return op.call(grad, x, loc, concentration);
}

// Next edges (loc, concentration); one input, the gradient of x.
struct VonMisesSampleBackward : torch::autograd::Node {
  SavedVariable loc;
  SavedVariable concentration;
  // The backward reads the sample itself: no rejection loop is run again.
  SavedVariable x;

  std::string name() const override { return "gradext::von_mises_rsampleBackward"; }

  void release_variables() override {
    std::lock_guard<std::mutex> lock(mutex_);
    loc.reset_data();
    concentration.reset_data();
    x.reset_data();
  }

  variable_list apply(variable_list&& grads) override {
    std::lock_guard<std::mutex> lock(mutex_);
    const bool need_loc = task_should_compute_output(0);
    const bool need_concentration = task_should_compute_output(1);
    if (!grads[0].defined()) return {{}, {}};
    const at::Tensor mu = loc.unpack();
    const at::Tensor kappa = concentration.unpack();
    at::Tensor grad_loc, grad_concentration;
    if (need_loc) {
      grad_loc = as_dtype(grads[0].sum_to_size_symint(mu.sym_sizes()), mu.scalar_type());
    }
    if (need_concentration) {
      grad_concentration = as_dtype(call_backward_op(grads[0], x.unpack(getptr()), mu, kappa)
                                        .sum_to_size_symint(kappa.sym_sizes()),
                                    kappa.scalar_type());
    }
    return {grad_loc, grad_concentration};
  }
};

// `sample` (the op below autograd), then the node that differentiates it where there is a
// gradient to track.
template <class Sample>
at::Tensor with_autograd(const at::Tensor& loc, const at::Tensor& concentration,
                         const Sample& sample) {
  check_no_forward_grad("von_mises_rsample", loc, concentration);
  if (!tracks_grad(loc, concentration)) return sample();
  at::Tensor x = sample();
  auto node = make_node_for<VonMisesSampleBackward>(loc, concentration);
  node->loc = SavedVariable(loc, /*is_output=*/false);
  node->concentration = SavedVariable(concentration, /*is_output=*/false);
  torch::autograd::set_history(x, node);
  node->x = SavedVariable(x, /*is_output=*/true);
  return x;
}

at::Tensor von_mises_rsample_autograd(const at::Tensor& loc, const at::Tensor& concentration,
                                      std::optional<c10::SymInt> num_samples,
                                      std::optional<at::Generator> generator) {
  static const auto op = typed_op<at::Tensor(const at::Tensor&, const at::Tensor&,
                                             std::optional<c10::SymInt>,
                                             std::optional<at::Generator>)>(
      "gradext::von_mises_rsample");
  return with_autograd(loc, concentration, [&] {
    return call_below_autograd(op, loc, concentration, num_samples, generator);
  });
}

at::Tensor von_mises_rsample_seeded_autograd(const at::Tensor& loc,
                                             const at::Tensor& concentration,
                                             std::optional<c10::SymInt> num_samples,
                                             int64_t seed, int64_t offset) {
  static const auto op = typed_op<at::Tensor(const at::Tensor&, const at::Tensor&,
                                             std::optional<c10::SymInt>, int64_t, int64_t)>(
      "gradext::_von_mises_rsample_seeded");
  return with_autograd(loc, concentration, [&] {
    return call_below_autograd(op, loc, concentration, num_samples, seed, offset);
  });
}

}  // namespace
}  // namespace gradext::ops

TORCH_LIBRARY_IMPL(gradext, Autograd, m) {
  m.impl("von_mises_rsample", &gradext::ops::von_mises_rsample_autograd);
  m.impl("_von_mises_rsample_seeded", &gradext::ops::von_mises_rsample_seeded_autograd);
}

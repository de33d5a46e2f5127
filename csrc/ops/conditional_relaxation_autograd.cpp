// Autograd of conditional_relaxation and its seeded twin, registered in C++ at the Autograd key
// as a plain graph node (docs/design.md, "Where autograd lives"). Under torch.func's transforms
// gradext/conditional_relaxation.py applies the same formula in Python
// (_sample_setup_context / _sample_backward: change both together; the contract tests compare
// them bitwise). The derivative of the fused backward (double backward) and the vmap rules are
// in gradext/conditional_relaxation.py only.
//
//   grad_logits = fused_backward(grad_soft, grad_soft_cond, logits, tau, rng_state)
// which draws both noises again from rng_state: autograd keeps logits and two integers. b and
// rng_state are not differentiable.
#include <torch/library.h>

#include <mutex>

#include "ops/autograd_node.h"
#include "ops/autograd_support.h"

namespace gradext::ops {
namespace {

using torch::autograd::SavedVariable;
using torch::autograd::variable_list;

using Outputs = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

std::optional<at::Tensor> present(const at::Tensor& grad) {
  return grad.defined() ? std::optional<at::Tensor>(grad.contiguous()) : std::nullopt;
}

// Next edges (logits, tau: tau gets no gradient here); two inputs, the gradients of soft and
// soft_cond, either of which may be undefined (one relaxation may get no gradient, and no
// zero-filled tensor is made for it).
struct ConditionalRelaxationBackward : torch::autograd::Node {
  SavedVariable logits;
  SavedVariable tau;
  SavedVariable rng_state;
  bool categorical = false;

  std::string name() const override { return "gradext::conditional_relaxationBackward"; }

  void release_variables() override {
    std::lock_guard<std::mutex> lock(mutex_);
    logits.reset_data();
    tau.reset_data();
    rng_state.reset_data();
  }

  variable_list apply(variable_list&& grads) override {
    using Signature =
        at::Tensor(const std::optional<at::Tensor>&, const std::optional<at::Tensor>&,
                   const at::Tensor&, const at::Tensor&, const at::Tensor&, bool);
    static const auto op = typed_op<Signature>("gradext::_conditional_relaxation_backward");
    std::lock_guard<std::mutex> lock(mutex_);
    at::Tensor grad_logits;
    if (task_should_compute_output(0) && (grads[0].defined() || grads[1].defined())) {
      BelowAutogradUnlessRecording below_autograd;
      grad_logits = op.call(present(grads[0]), present(grads[1]), logits.unpack(),
                            tau.unpack(), rng_state.unpack(), categorical);
    }
    return {grad_logits, at::Tensor()};
  }
};

// `sample` (the op below autograd), then the node that differentiates soft and soft_cond where
// there is a gradient to track (b and rng_state are not differentiable).
template <class Sample>
Outputs with_autograd(const at::Tensor& logits, const at::Tensor& tau, bool categorical,
                      const Sample& sample) {
  check_no_forward_grad("conditional_relaxation", logits, tau);
  if (!tracks_grad(logits, tau)) return sample();
  auto [b, soft, soft_cond, rng_state] = sample();
  auto node = make_node_for<ConditionalRelaxationBackward>(logits, tau);
  node->logits = SavedVariable(logits, /*is_output=*/false);
  node->tau = SavedVariable(tau, /*is_output=*/false);
  node->rng_state = SavedVariable(rng_state, /*is_output=*/false);
  node->categorical = categorical;
  torch::autograd::set_history(soft, node);
  torch::autograd::set_history(soft_cond, node);
  return {b, soft, soft_cond, rng_state};
}

Outputs sample_autograd(const at::Tensor& logits, const at::Tensor& tau, bool categorical,
                        std::optional<at::Generator> generator) {
  static const auto op = typed_op<Outputs(const at::Tensor&, const at::Tensor&, bool,
                                          std::optional<at::Generator>)>(
      "gradext::conditional_relaxation");
  return with_autograd(logits, tau, categorical, [&] {
    return call_below_autograd(op, logits, tau, categorical, generator);
  });
}

Outputs seeded_autograd(const at::Tensor& logits, const at::Tensor& tau, bool categorical,
                        int64_t seed, int64_t offset) {
  static const auto op =
      typed_op<Outputs(const at::Tensor&, const at::Tensor&, bool, int64_t, int64_t)>(
          "gradext::_conditional_relaxation_seeded");
  return with_autograd(logits, tau, categorical, [&] {
    return call_below_autograd(op, logits, tau, categorical, seed, offset);
  });
}

}  // namespace
}  // namespace gradext::ops

TORCH_LIBRARY_IMPL(gradext, Autograd, m) {
  m.impl("conditional_relaxation", &gradext::ops::sample_autograd);
  m.impl("_conditional_relaxation_seeded", &gradext::ops::seeded_autograd);
}

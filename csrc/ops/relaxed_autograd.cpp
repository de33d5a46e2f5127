// Autograd of the relaxed samplers (gumbel_softmax, gumbel_sigmoid and their seeded twins),
// registered in C++ at the Autograd key as a plain graph node (csrc/ops/autograd_node.h says
// why): an eager call builds its node without a Python frame, and torch.compile (AOTAutograd)
// traces the same node. Under torch.func's transforms gradext/relaxed.py applies the same formula
// in Python
// (_sample_setup_context / _sample_backward: change both together; the contract tests compare
// them bitwise). The derivatives of the fused backwards (double backward) and the vmap rules are
// in gradext/relaxed.py only.
//
//   grad_logits = fused_backward(grad_y (+ grad_y_soft when hard), y_soft, tau)
// with y_soft the soft sample: softmax's or sigmoid's Jacobian over tau, which is also the
// straight-through gradient of the hard sample.
#include <torch/library.h>

#include <mutex>

#include "ops/autograd_node.h"
#include "ops/autograd_support.h"
#include "ops/relaxed.h"

namespace gradext::ops {
namespace {

using torch::autograd::SavedVariable;
using torch::autograd::variable_list;

using BackwardSignature = at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&);

template <Relaxation kind>
const c10::TypedOperatorHandle<BackwardSignature>& fused_backward_op() {
  static const auto op = typed_op<BackwardSignature>(kind == Relaxation::kSoftmax
                                                         ? "gradext::_gumbel_softmax_backward"
                                                         : "gradext::_gumbel_sigmoid_backward");
  return op;
}

// Next edges (logits, tau: the one-element tau gets no gradient here); two inputs, the
// gradients of y and y_soft. y_soft's gets a gradient only in a double backward, so it is
// usually undefined (no zero-filled tensor is made for it).
template <Relaxation kind>
struct RelaxedSampleBackward : torch::autograd::Node {
  // The soft sample (the output itself when soft) and the one-element tau.
  SavedVariable y_soft;
  SavedVariable tau;
  bool hard = false;

  std::string name() const override {
    return kind == Relaxation::kSoftmax ? "gradext::gumbel_softmaxBackward"
                                        : "gradext::gumbel_sigmoidBackward";
  }

  void release_variables() override {
    std::lock_guard<std::mutex> lock(mutex_);
    y_soft.reset_data();
    tau.reset_data();
  }

  variable_list apply(variable_list&& grads) override {
    std::lock_guard<std::mutex> lock(mutex_);
    at::Tensor grad_y = grads[0];
    // With hard=True the saved soft sample is the second output, so a double backward that
    // differentiates the first backward's use of it sends its gradient here; its Jacobian is
    // the soft sample's, the one the straight-through gradient uses.
    if (hard && grads[1].defined()) grad_y = grad_y.defined() ? grad_y.add(grads[1]) : grads[1];
    at::Tensor grad_logits;
    if (task_should_compute_output(0) && grad_y.defined()) {
      BelowAutogradUnlessRecording below_autograd;
      grad_logits = fused_backward_op<kind>().call(grad_y.contiguous(),
                                                   y_soft.unpack(getptr()), tau.unpack());
    }
    return {grad_logits, at::Tensor()};
  }
};

// `sample` (the op below autograd, returning (y, y_soft)), then the node that differentiates
// both where there is a gradient to track.
template <Relaxation kind, class Sample>
std::tuple<at::Tensor, at::Tensor> with_autograd(const at::Tensor& logits, const at::Tensor& tau,
                                                 bool hard, const Sample& sample) {
  check_no_forward_grad(kind == Relaxation::kSoftmax ? "gumbel_softmax" : "gumbel_sigmoid",
                        logits, tau);
  if (!tracks_grad(logits, tau)) return sample();
  auto [y, y_soft] = sample();
  auto node = make_node_for<RelaxedSampleBackward<kind>>(logits, tau);
  torch::autograd::set_history(y, node);
  torch::autograd::set_history(y_soft, node);
  node->y_soft = SavedVariable(hard ? y_soft : y, /*is_output=*/true);
  node->tau = SavedVariable(tau, /*is_output=*/false);
  node->hard = hard;
  return {y, y_soft};
}

template <Relaxation kind>
std::tuple<at::Tensor, at::Tensor> sample_autograd(const at::Tensor& logits,
                                                   const at::Tensor& tau, bool hard,
                                                   std::optional<at::Generator> generator) {
  static const auto op = typed_op<std::tuple<at::Tensor, at::Tensor>(
      const at::Tensor&, const at::Tensor&, bool, std::optional<at::Generator>)>(
      kind == Relaxation::kSoftmax ? "gradext::gumbel_softmax" : "gradext::gumbel_sigmoid");
  return with_autograd<kind>(logits, tau, hard, [&] {
    return call_below_autograd(op, logits, tau, hard, generator);
  });
}

template <Relaxation kind>
std::tuple<at::Tensor, at::Tensor> seeded_autograd(const at::Tensor& logits,
                                                   const at::Tensor& tau, bool hard, int64_t seed,
                                                   int64_t offset) {
  static const auto op = typed_op<std::tuple<at::Tensor, at::Tensor>(
      const at::Tensor&, const at::Tensor&, bool, int64_t, int64_t)>(
      kind == Relaxation::kSoftmax ? "gradext::_gumbel_softmax_seeded"
                                   : "gradext::_gumbel_sigmoid_seeded");
  return with_autograd<kind>(logits, tau, hard, [&] {
    return call_below_autograd(op, logits, tau, hard, seed, offset);
  });
}

}  // namespace
}  // namespace gradext::ops

TORCH_LIBRARY_IMPL(gradext, Autograd, m) {
  using gradext::ops::Relaxation;
  m.impl("gumbel_softmax", &gradext::ops::sample_autograd<Relaxation::kSoftmax>);
  m.impl("_gumbel_softmax_seeded", &gradext::ops::seeded_autograd<Relaxation::kSoftmax>);
  m.impl("gumbel_sigmoid", &gradext::ops::sample_autograd<Relaxation::kSigmoid>);
  m.impl("_gumbel_sigmoid_seeded", &gradext::ops::seeded_autograd<Relaxation::kSigmoid>);
}

// Autograd of the relaxed samplers (gumbel_softmax, gumbel_sigmoid and their seeded twins),
// registered in C++ at the Autograd key: an eager call builds its graph node without a Python
// frame, and torch.compile (AOTAutograd) traces the same node. torch.func refuses C++ autograd
// Functions, so under its transforms gradext/relaxed.py applies the same formula in Python
// (_sample_setup_context / _sample_backward: change both together; the contract tests compare
// them bitwise). The derivatives of the fused backwards (double backward) and the vmap rules are
// in gradext/relaxed.py only.
//
//   grad_logits = fused_backward(grad_y (+ grad_y_soft when hard), y_soft, tau)
// with y_soft the soft sample: softmax's or sigmoid's Jacobian over tau, which is also the
// straight-through gradient of the hard sample.
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include "ops/autograd_support.h"
#include "ops/relaxed.h"

namespace gradext::ops {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

using BackwardSignature = at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&);

template <Relaxation kind>
const c10::TypedOperatorHandle<BackwardSignature>& fused_backward_op() {
  static const auto op = typed_op<BackwardSignature>(kind == Relaxation::kSoftmax
                                                         ? "gradext::_gumbel_softmax_backward"
                                                         : "gradext::_gumbel_sigmoid_backward");
  return op;
}

template <Relaxation kind>
struct RelaxedSample : torch::autograd::Function<RelaxedSample<kind>> {
  // `sample` runs the sampling op below autograd and returns its (y, y_soft).
  template <class Sample>
  static variable_list forward(AutogradContext* ctx, const at::Tensor& logits,
                               const at::Tensor& tau, bool hard, const Sample& sample) {
    auto [y, y_soft] = sample();
    // Kept for backward: the soft sample (the output itself when soft) and the one-element tau.
    ctx->save_for_backward({hard ? y_soft : y, tau});
    ctx->saved_data["hard"] = hard;
    // The second output (y_soft) gets a gradient only in a double backward; skip autograd's
    // zero-filling for it on every first-order backward.
    ctx->set_materialize_grads(false);
    return {y, y_soft};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& y_soft = saved[0];
    const bool hard = ctx->saved_data["hard"].toBool();
    at::Tensor grad_y = grads[0];
    // With hard=True the saved soft sample is the second output, so a double backward that
    // differentiates the first backward's use of it sends its gradient here; its Jacobian is
    // the soft sample's, the one the straight-through gradient uses.
    if (hard && grads[1].defined()) grad_y = grad_y.defined() ? grad_y.add(grads[1]) : grads[1];
    at::Tensor grad_logits;
    if (ctx->needs_input_grad(0) && grad_y.defined()) {
      BelowAutogradUnlessRecording below_autograd;
      grad_logits = fused_backward_op<kind>().call(grad_y.contiguous(), y_soft, saved[1]);
    }
    // One gradient per forward argument after ctx: logits, tau, hard, sample.
    return {grad_logits, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

template <Relaxation kind>
std::tuple<at::Tensor, at::Tensor> sample_autograd(const at::Tensor& logits,
                                                   const at::Tensor& tau, bool hard,
                                                   std::optional<at::Generator> generator) {
  static const auto op = typed_op<std::tuple<at::Tensor, at::Tensor>(
      const at::Tensor&, const at::Tensor&, bool, std::optional<at::Generator>)>(
      kind == Relaxation::kSoftmax ? "gradext::gumbel_softmax" : "gradext::gumbel_sigmoid");
  return as_pair(RelaxedSample<kind>::apply(logits, tau, hard, [&] {
    return call_below_autograd(op, logits, tau, hard, generator);
  }));
}

template <Relaxation kind>
std::tuple<at::Tensor, at::Tensor> seeded_autograd(const at::Tensor& logits,
                                                   const at::Tensor& tau, bool hard, int64_t seed,
                                                   int64_t offset) {
  static const auto op = typed_op<std::tuple<at::Tensor, at::Tensor>(
      const at::Tensor&, const at::Tensor&, bool, int64_t, int64_t)>(
      kind == Relaxation::kSoftmax ? "gradext::_gumbel_softmax_seeded"
                                   : "gradext::_gumbel_sigmoid_seeded");
  return as_pair(RelaxedSample<kind>::apply(logits, tau, hard, [&] {
    return call_below_autograd(op, logits, tau, hard, seed, offset);
  }));
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

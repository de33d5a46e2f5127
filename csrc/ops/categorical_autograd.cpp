// Autograd of categorical_sample and its seeded twin, registered in C++ at the Autograd key as a
// plain graph node (csrc/ops/autograd_node.h says why): an eager call builds its node without a
// Python frame, and torch.compile (AOTAutograd) traces the same node. Under torch.func's
// transforms gradext/categorical.py applies the same formula in Python (_sample_setup_context /
// _sample_backward: change both together; the contract tests compare them bitwise). The
// derivative of the fused backward (double backward) and the vmap rules are in
// gradext/categorical.py only.
//
//   grad_logits[b] = sum_s grad[s, b] * (onehot(index[s, b]) - softmax(logits[b]))
// one fused kernel that recomputes the softmax from the saved logits.
#include <torch/library.h>

#include <mutex>

#include "ops/autograd_node.h"
#include "ops/autograd_support.h"

namespace gradext::ops {
namespace {

using torch::autograd::SavedVariable;
using torch::autograd::variable_list;

// Next edge: logits; one input, the gradient of log_prob (the indices are not differentiable).
struct CategoricalSampleBackward : torch::autograd::Node {
  // Kept for backward: the logits (an input) and the drawn indices; the softmax is recomputed.
  SavedVariable logits;
  SavedVariable index;

  std::string name() const override { return "gradext::categorical_sampleBackward"; }

  void release_variables() override {
    std::lock_guard<std::mutex> lock(mutex_);
    logits.reset_data();
    index.reset_data();
  }

  variable_list apply(variable_list&& grads) override {
    static const auto fused_backward =
        typed_op<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&)>(
            "gradext::_categorical_sample_backward");
    std::lock_guard<std::mutex> lock(mutex_);
    if (!grads[0].defined() || !task_should_compute_output(0)) return {at::Tensor()};
    BelowAutogradUnlessRecording below_autograd;
    return {fused_backward.call(grads[0].contiguous(), logits.unpack(), index.unpack())};
  }
};

// `sample` (the op below autograd, returning (log_prob, index)), then the node that
// differentiates it where there is a gradient to track.
template <class Sample>
std::tuple<at::Tensor, at::Tensor> with_autograd(const at::Tensor& logits, const Sample& sample) {
  check_no_forward_grad("categorical_sample", logits);
  if (!tracks_grad(logits)) return sample();
  auto [log_prob, index] = sample();
  auto node = make_node_for<CategoricalSampleBackward>(logits);
  node->logits = SavedVariable(logits, /*is_output=*/false);
  node->index = SavedVariable(index, /*is_output=*/false);
  torch::autograd::set_history(log_prob, node);
  return {log_prob, index};
}

std::tuple<at::Tensor, at::Tensor> sample_autograd(const at::Tensor& logits,
                                                   c10::SymInt num_samples,
                                                   std::optional<at::Generator> generator) {
  static const auto op = typed_op<std::tuple<at::Tensor, at::Tensor>(
      const at::Tensor&, c10::SymInt, std::optional<at::Generator>)>(
      "gradext::categorical_sample");
  return with_autograd(logits, [&] {
    return call_below_autograd(op, logits, num_samples, generator);
  });
}

std::tuple<at::Tensor, at::Tensor> seeded_autograd(const at::Tensor& logits,
                                                   c10::SymInt num_samples, int64_t seed,
                                                   int64_t offset) {
  static const auto op = typed_op<std::tuple<at::Tensor, at::Tensor>(
      const at::Tensor&, c10::SymInt, int64_t, int64_t)>("gradext::_categorical_sample_seeded");
  return with_autograd(logits, [&] {
    return call_below_autograd(op, logits, num_samples, seed, offset);
  });
}

}  // namespace
}  // namespace gradext::ops

TORCH_LIBRARY_IMPL(gradext, Autograd, m) {
  m.impl("categorical_sample", &gradext::ops::sample_autograd);
  m.impl("_categorical_sample_seeded", &gradext::ops::seeded_autograd);
}

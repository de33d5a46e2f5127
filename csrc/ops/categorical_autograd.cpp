// Autograd of categorical_sample and its seeded twin, registered in C++ at the Autograd key: an
// eager call builds its graph node without a Python frame, and torch.compile (AOTAutograd)
// traces the same node. torch.func refuses C++ autograd Functions, so under its transforms
// gradext/categorical.py applies the same formula in Python (_sample_setup_context /
// _sample_backward: change both together; the contract tests compare them bitwise). The
// derivative of the fused backward (double backward) and the vmap rules are in
// gradext/categorical.py only.
//
//   grad_logits[b] = sum_s grad[s, b] * (onehot(index[s, b]) - softmax(logits[b]))
// one fused kernel that recomputes the softmax from the saved logits.
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include "ops/autograd_support.h"

namespace gradext::ops {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct CategoricalSample : torch::autograd::Function<CategoricalSample> {
  // `sample` runs the sampling op below autograd and returns its (log_prob, index).
  template <class Sample>
  static variable_list forward(AutogradContext* ctx, const at::Tensor& logits,
                               const Sample& sample) {
    auto [log_prob, index] = sample();
    ctx->mark_non_differentiable({index});
    // Kept for backward: the logits (an input) and the drawn indices; the softmax is
    // recomputed.
    ctx->save_for_backward({logits, index});
    ctx->set_materialize_grads(false);
    return {log_prob, index};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static const auto fused_backward =
        typed_op<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&)>(
            "gradext::_categorical_sample_backward");
    at::Tensor grad_logits;
    if (ctx->needs_input_grad(0) && grads[0].defined()) {
      const auto saved = ctx->get_saved_variables();
      BelowAutogradUnlessRecording below_autograd;
      grad_logits = fused_backward.call(grads[0].contiguous(), saved[0], saved[1]);
    }
    // One gradient per forward argument after ctx: logits, sample.
    return {grad_logits, at::Tensor()};
  }
};

std::tuple<at::Tensor, at::Tensor> sample_autograd(const at::Tensor& logits,
                                                   c10::SymInt num_samples,
                                                   std::optional<at::Generator> generator) {
  static const auto op = typed_op<std::tuple<at::Tensor, at::Tensor>(
      const at::Tensor&, c10::SymInt, std::optional<at::Generator>)>(
      "gradext::categorical_sample");
  return as_pair(CategoricalSample::apply(logits, [&] {
    return call_below_autograd(op, logits, num_samples, generator);
  }));
}

std::tuple<at::Tensor, at::Tensor> seeded_autograd(const at::Tensor& logits,
                                                   c10::SymInt num_samples, int64_t seed,
                                                   int64_t offset) {
  static const auto op = typed_op<std::tuple<at::Tensor, at::Tensor>(
      const at::Tensor&, c10::SymInt, int64_t, int64_t)>("gradext::_categorical_sample_seeded");
  return as_pair(CategoricalSample::apply(logits, [&] {
    return call_below_autograd(op, logits, num_samples, seed, offset);
  }));
}

}  // namespace
}  // namespace gradext::ops

TORCH_LIBRARY_IMPL(gradext, Autograd, m) {
  m.impl("categorical_sample", &gradext::ops::sample_autograd);
  m.impl("_categorical_sample_seeded", &gradext::ops::seeded_autograd);
}

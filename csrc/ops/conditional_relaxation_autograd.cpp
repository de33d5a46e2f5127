// Autograd of conditional_relaxation and its seeded twin, registered in C++ at the Autograd key
// (docs/design.md, "Where autograd lives"). torch.func refuses C++ autograd Functions, so under
// its transforms gradext/conditional_relaxation.py applies the same formula in Python
// (_sample_setup_context / _sample_backward: change both together; the contract tests compare
// them bitwise). The derivative of the fused backward (double backward) and the vmap rules are
// in gradext/conditional_relaxation.py only.
//
//   grad_logits = fused_backward(grad_soft, grad_soft_cond, logits, tau, rng_state)
// which draws both noises again from rng_state: autograd keeps logits and two integers. b and
// rng_state are not differentiable.
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include "ops/autograd_support.h"

namespace gradext::ops {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

using Outputs = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

std::optional<at::Tensor> present(const at::Tensor& grad) {
  return grad.defined() ? std::optional<at::Tensor>(grad.contiguous()) : std::nullopt;
}

struct ConditionalRelaxationSample
    : torch::autograd::Function<ConditionalRelaxationSample> {
  // `sample` runs the sampling op below autograd and returns its four outputs.
  template <class Sample>
  static variable_list forward(AutogradContext* ctx, const at::Tensor& logits,
                               const at::Tensor& tau, bool categorical, const Sample& sample) {
    auto [b, soft, soft_cond, rng_state] = sample();
    ctx->save_for_backward({logits, tau, rng_state});
    ctx->saved_data["categorical"] = categorical;
    ctx->mark_non_differentiable({b, rng_state});
    // One relaxation may get no gradient: no zero-filled tensor is made for it.
    ctx->set_materialize_grads(false);
    return {b, soft, soft_cond, rng_state};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    using Signature =
        at::Tensor(const std::optional<at::Tensor>&, const std::optional<at::Tensor>&,
                   const at::Tensor&, const at::Tensor&, const at::Tensor&, bool);
    static const auto op = typed_op<Signature>("gradext::_conditional_relaxation_backward");
    const auto saved = ctx->get_saved_variables();
    at::Tensor grad_logits;
    if (ctx->needs_input_grad(0) && (grads[1].defined() || grads[2].defined())) {
      BelowAutogradUnlessRecording below_autograd;
      grad_logits = op.call(present(grads[1]), present(grads[2]), saved[0], saved[1], saved[2],
                            ctx->saved_data["categorical"].toBool());
    }
    // One gradient per forward argument after ctx: logits, tau, categorical, sample.
    return {grad_logits, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

Outputs as_outputs(const variable_list& v) { return {v[0], v[1], v[2], v[3]}; }

Outputs sample_autograd(const at::Tensor& logits, const at::Tensor& tau, bool categorical,
                        std::optional<at::Generator> generator) {
  static const auto op = typed_op<Outputs(const at::Tensor&, const at::Tensor&, bool,
                                          std::optional<at::Generator>)>(
      "gradext::conditional_relaxation");
  return as_outputs(ConditionalRelaxationSample::apply(logits, tau, categorical, [&] {
    return call_below_autograd(op, logits, tau, categorical, generator);
  }));
}

Outputs seeded_autograd(const at::Tensor& logits, const at::Tensor& tau, bool categorical,
                        int64_t seed, int64_t offset) {
  static const auto op =
      typed_op<Outputs(const at::Tensor&, const at::Tensor&, bool, int64_t, int64_t)>(
          "gradext::_conditional_relaxation_seeded");
  return as_outputs(ConditionalRelaxationSample::apply(logits, tau, categorical, [&] {
    return call_below_autograd(op, logits, tau, categorical, seed, offset);
  }));
}

}  // namespace
}  // namespace gradext::ops

TORCH_LIBRARY_IMPL(gradext, Autograd, m) {
  m.impl("conditional_relaxation", &gradext::ops::sample_autograd);
  m.impl("_conditional_relaxation_seeded", &gradext::ops::seeded_autograd);
}

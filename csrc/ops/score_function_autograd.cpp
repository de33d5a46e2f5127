// Autograd of the leave-one-out estimators (score_function_loo, vimco), registered in C++ at
// the Autograd key: an eager call builds its graph node without a Python frame, and
// torch.compile (AOTAutograd) traces the same node. torch.func refuses C++ autograd Functions,
// so under its transforms gradext/score_function.py applies the same formulas in Python
// (_score_function_loo_setup_context / _score_function_loo_estimator and _vimco_setup_context /
// _vimco_estimator: change both together; the contract tests compare them bitwise). The
// derivatives of the fused backwards (double backward) and the vmap rules are in
// gradext/score_function.py only.
//
//   score_function_loo: grad_f = grad / K (every k), grad_log_prob = grad * (f_k - b_k) / K
//   vimco: grad_log_weights = grad * softmax(log_weights), grad_log_prob = grad * (L - L_{-k})
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include "ops/autograd_support.h"

namespace gradext::ops {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct ScoreFunctionLoo : torch::autograd::Function<ScoreFunctionLoo> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& f, const at::Tensor& log_prob,
                            int64_t dim) {
    static const auto op =
        typed_op<at::Tensor(const at::Tensor&, const at::Tensor&, int64_t)>(
            "gradext::score_function_loo");
    const at::Tensor mean = call_below_autograd(op, f, log_prob, dim);
    ctx->save_for_backward({f});  // the only tensor kept: the values (the baseline needs all)
    ctx->saved_data["dim"] = dim;
    ctx->saved_data["log_prob_dtype"] = log_prob.scalar_type();
    return mean;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static const auto fused_backward =
        typed_op<at::Tensor(const at::Tensor&, const at::Tensor&, int64_t)>(
            "gradext::_score_function_loo_backward");
    const at::Tensor f = ctx->get_saved_variables()[0];
    const int64_t dim = ctx->saved_data["dim"].toInt();
    const at::Tensor& grad = grads[0];
    at::Tensor grad_f;
    at::Tensor grad_log_prob;
    if (ctx->needs_input_grad(0)) {
      // d mean / d f_k = 1 / K for every k: a broadcast view, nothing of size K is written.
      grad_f = grad.div(c10::Scalar(f.sym_size(dim))).unsqueeze(dim).expand_symint(
          f.sym_sizes());
    }
    if (ctx->needs_input_grad(1)) {
      BelowAutogradUnlessRecording below_autograd;
      grad_log_prob = fused_backward.call(grad.contiguous(), f, dim)
                          .to(ctx->saved_data["log_prob_dtype"].toScalarType());
    }
    // One gradient per forward argument after ctx: f, log_prob, dim.
    return {grad_f, grad_log_prob, at::Tensor()};
  }
};

struct Vimco : torch::autograd::Function<Vimco> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& log_weights,
                               const at::Tensor& log_prob, int64_t dim) {
    static const auto op = typed_op<std::tuple<at::Tensor, at::Tensor>(
        const at::Tensor&, const at::Tensor&, int64_t)>("gradext::vimco");
    const auto [bound, stats] = call_below_autograd(op, log_weights, log_prob, dim);
    ctx->mark_non_differentiable({stats});
    // Kept: the log weights and 6 scalars per datapoint.
    ctx->save_for_backward({log_weights, stats});
    ctx->saved_data["dim"] = dim;
    ctx->saved_data["log_prob_dtype"] = log_prob.scalar_type();
    ctx->set_materialize_grads(false);
    return {bound, stats};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static const auto fused_backward = typed_op<std::tuple<at::Tensor, at::Tensor>(
        const at::Tensor&, const at::Tensor&, const at::Tensor&, int64_t, std::array<bool, 2>)>(
        "gradext::_vimco_backward");
    const bool need_weights = ctx->needs_input_grad(0);
    const bool need_log_prob = ctx->needs_input_grad(1);
    if (!grads[0].defined() || !(need_weights || need_log_prob)) {
      return {at::Tensor(), at::Tensor(), at::Tensor()};
    }
    const auto saved = ctx->get_saved_variables();
    at::Tensor grad_weights;
    at::Tensor grad_log_prob;
    {
      BelowAutogradUnlessRecording below_autograd;
      std::tie(grad_weights, grad_log_prob) =
          fused_backward.call(grads[0].contiguous(), saved[0], saved[1],
                              ctx->saved_data["dim"].toInt(), {need_weights, need_log_prob});
    }
    if (!need_weights) grad_weights = at::Tensor();
    if (need_log_prob) {
      grad_log_prob = grad_log_prob.to(ctx->saved_data["log_prob_dtype"].toScalarType());
    } else {
      grad_log_prob = at::Tensor();
    }
    // One gradient per forward argument after ctx: log_weights, log_prob, dim.
    return {grad_weights, grad_log_prob, at::Tensor()};
  }
};

at::Tensor score_function_loo_autograd(const at::Tensor& f, const at::Tensor& log_prob,
                                       int64_t dim) {
  return ScoreFunctionLoo::apply(f, log_prob, dim);
}

std::tuple<at::Tensor, at::Tensor> vimco_autograd(const at::Tensor& log_weights,
                                                  const at::Tensor& log_prob, int64_t dim) {
  return as_pair(Vimco::apply(log_weights, log_prob, dim));
}

}  // namespace
}  // namespace gradext::ops

TORCH_LIBRARY_IMPL(gradext, Autograd, m) {
  m.impl("score_function_loo", &gradext::ops::score_function_loo_autograd);
  m.impl("vimco", &gradext::ops::vimco_autograd);
}

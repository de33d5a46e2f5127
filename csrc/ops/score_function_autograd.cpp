// Autograd of the leave-one-out estimators (score_function_loo, vimco), registered in C++ at
// the Autograd key as plain graph nodes (csrc/ops/autograd_node.h says why): an eager call
// builds its node without a Python frame, and torch.compile (AOTAutograd) traces the same node.
// Under torch.func's transforms gradext/score_function.py applies the same formulas in Python
// (_score_function_loo_setup_context / _score_function_loo_estimator and _vimco_setup_context /
// _vimco_estimator: change both together; the contract tests compare them bitwise). The
// derivatives of the fused backwards (double backward) and the vmap rules are in
// gradext/score_function.py only.
//
//   score_function_loo: grad_f = grad / K (every k), grad_log_prob = grad * (f_k - b_k) / K
//   vimco: grad_log_weights = grad * softmax(log_weights), grad_log_prob = grad * (L - L_{-k})
#include <torch/library.h>

#include <mutex>

#include "ops/autograd_node.h"
#include "ops/autograd_support.h"

namespace gradext::ops {
namespace {

using torch::autograd::SavedVariable;
using torch::autograd::variable_list;

// Next edges (f, log_prob); one input, the gradient of the mean.
struct ScoreFunctionLooBackward : torch::autograd::Node {
  SavedVariable f;  // the only tensor kept: the values (the baseline needs all)
  int64_t dim = 0;
  at::ScalarType log_prob_dtype = at::kFloat;

  std::string name() const override { return "gradext::score_function_looBackward"; }

  void release_variables() override {
    std::lock_guard<std::mutex> lock(mutex_);
    f.reset_data();
  }

  variable_list apply(variable_list&& grads) override {
    static const auto fused_backward =
        typed_op<at::Tensor(const at::Tensor&, const at::Tensor&, int64_t)>(
            "gradext::_score_function_loo_backward");
    std::lock_guard<std::mutex> lock(mutex_);
    const at::Tensor& grad = grads[0];
    if (!grad.defined()) return {{}, {}};
    const at::Tensor values = f.unpack();
    at::Tensor grad_f;
    at::Tensor grad_log_prob;
    if (task_should_compute_output(0)) {
      // d mean / d f_k = 1 / K for every k: a broadcast view, nothing of size K is written.
      grad_f = grad.div(c10::Scalar(values.sym_size(dim)))
                   .unsqueeze(dim)
                   .expand_symint(values.sym_sizes());
    }
    if (task_should_compute_output(1)) {
      BelowAutogradUnlessRecording below_autograd;
      grad_log_prob = as_dtype(fused_backward.call(grad.contiguous(), values, dim), log_prob_dtype);
    }
    return {grad_f, grad_log_prob};
  }
};

// Next edges (log_weights, log_prob); one input, the gradient of the bound (the statistics are
// not differentiable).
struct VimcoBackward : torch::autograd::Node {
  // Kept: the log weights and 6 scalars per datapoint.
  SavedVariable log_weights;
  SavedVariable stats;
  int64_t dim = 0;
  at::ScalarType log_prob_dtype = at::kFloat;

  std::string name() const override { return "gradext::vimcoBackward"; }

  void release_variables() override {
    std::lock_guard<std::mutex> lock(mutex_);
    log_weights.reset_data();
    stats.reset_data();
  }

  variable_list apply(variable_list&& grads) override {
    static const auto fused_backward = typed_op<std::tuple<at::Tensor, at::Tensor>(
        const at::Tensor&, const at::Tensor&, const at::Tensor&, int64_t, std::array<bool, 2>)>(
        "gradext::_vimco_backward");
    std::lock_guard<std::mutex> lock(mutex_);
    const bool need_weights = task_should_compute_output(0);
    const bool need_log_prob = task_should_compute_output(1);
    if (!grads[0].defined() || !(need_weights || need_log_prob)) return {{}, {}};
    at::Tensor grad_weights;
    at::Tensor grad_log_prob;
    {
      BelowAutogradUnlessRecording below_autograd;
      std::tie(grad_weights, grad_log_prob) =
          fused_backward.call(grads[0].contiguous(), log_weights.unpack(), stats.unpack(), dim,
                              {need_weights, need_log_prob});
    }
    return {need_weights ? grad_weights : at::Tensor(),
            need_log_prob ? as_dtype(grad_log_prob, log_prob_dtype) : at::Tensor()};
  }
};

at::Tensor score_function_loo_autograd(const at::Tensor& f, const at::Tensor& log_prob,
                                       int64_t dim) {
  static const auto op = typed_op<at::Tensor(const at::Tensor&, const at::Tensor&, int64_t)>(
      "gradext::score_function_loo");
  check_no_forward_grad("score_function_loo", f, log_prob);
  at::Tensor mean = call_below_autograd(op, f, log_prob, dim);
  if (!tracks_grad(f, log_prob)) return mean;
  auto node = make_node_for<ScoreFunctionLooBackward>(f, log_prob);
  node->f = SavedVariable(f, /*is_output=*/false);
  node->dim = dim;
  node->log_prob_dtype = log_prob.scalar_type();
  torch::autograd::set_history(mean, node);
  return mean;
}

std::tuple<at::Tensor, at::Tensor> vimco_autograd(const at::Tensor& log_weights,
                                                  const at::Tensor& log_prob, int64_t dim) {
  static const auto op = typed_op<std::tuple<at::Tensor, at::Tensor>(
      const at::Tensor&, const at::Tensor&, int64_t)>("gradext::vimco");
  check_no_forward_grad("vimco", log_weights, log_prob);
  auto [bound, stats] = call_below_autograd(op, log_weights, log_prob, dim);
  if (!tracks_grad(log_weights, log_prob)) return {bound, stats};
  auto node = make_node_for<VimcoBackward>(log_weights, log_prob);
  node->log_weights = SavedVariable(log_weights, /*is_output=*/false);
  node->stats = SavedVariable(stats, /*is_output=*/false);
  node->dim = dim;
  node->log_prob_dtype = log_prob.scalar_type();
  torch::autograd::set_history(bound, node);
  return {bound, stats};
}

}  // namespace
}  // namespace gradext::ops

TORCH_LIBRARY_IMPL(gradext, Autograd, m) {
  m.impl("score_function_loo", &gradext::ops::score_function_loo_autograd);
  m.impl("vimco", &gradext::ops::vimco_autograd);
}

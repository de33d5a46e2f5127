// Autograd of the Gaussian sampling ops (gaussian_rsample and its seeded and replay twins),
// registered in C++ at the Autograd key: an eager call builds its graph node without a Python
// frame on the way in or out, and torch.compile (AOTAutograd) traces the same node. torch.func
// refuses C++ autograd Functions, so under its transforms gradext/gaussian.py applies the same
// formula in Python (_sample_setup_context / _sample_backward: change both together; the
// contract tests compare them bitwise). The derivative of the fused backward (double backward)
// and the vmap rules are in gradext/gaussian.py only.
//
//   z = mu + exp(logvar / 2) * eps
//   grad_mu     = grad summed over the samples and mu's broadcast dimensions
//   grad_logvar = grad * eps * exp(logvar / 2) / 2, summed to logvar's shape (fused kernel that
//                 draws eps again from the saved Philox (seed, offset))
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include "ops/autograd_support.h"

namespace gradext::ops {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

std::tuple<at::Tensor, at::Tensor> call_backward_op(const at::Tensor& grad,
                                                    const at::Tensor& logvar,
                                                    const at::Tensor& rng_state,
                                                    c10::SymIntArrayRef mu_size,
                                                    bool has_sample_dim, bool need_grad_mu) {
  static const auto op = typed_op<std::tuple<at::Tensor, at::Tensor>(
      const at::Tensor&, const at::Tensor&, const at::Tensor&, c10::SymIntArrayRef, bool, bool)>(
      "gradext::_gaussian_rsample_backward");
  BelowAutogradUnlessRecording below_autograd;
  return op.call(grad, logvar, rng_state, mu_size, has_sample_dim, need_grad_mu);
}

struct GaussianSample : torch::autograd::Function<GaussianSample> {
  // `sample` runs the sampling op below autograd and returns its (z, rng_state).
  template <class Sample>
  static variable_list forward(AutogradContext* ctx, const at::Tensor& mu,
                               const at::Tensor& logvar, bool has_sample_dim,
                               const Sample& sample) {
    auto [z, rng_state] = sample();
    // All that backward keeps: logvar and the 2-element (seed, offset); never the noise.
    ctx->save_for_backward({logvar, rng_state});
    ctx->saved_data["mu_size"] = mu.sym_sizes().vec();
    ctx->saved_data["mu_dtype"] = mu.scalar_type();
    ctx->saved_data["has_sample_dim"] = has_sample_dim;
    ctx->mark_non_differentiable({rng_state});
    return {z, rng_state};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& logvar = saved[0];
    const at::Tensor& rng_state = saved[1];
    const std::vector<c10::SymInt> mu_size = ctx->saved_data["mu_size"].toSymIntVector();
    const auto mu_dtype = ctx->saved_data["mu_dtype"].toScalarType();
    const bool has_sample_dim = ctx->saved_data["has_sample_dim"].toBool();
    const bool need_mu = ctx->needs_input_grad(0);
    const bool need_logvar = ctx->needs_input_grad(1);
    at::Tensor grad_z = grads[0];
    at::Tensor grad_mu;
    at::Tensor grad_logvar;
    // d z / d mu = 1: grad_mu is grad summed over the samples and broadcast dimensions. With one
    // sample that needs no kernel (grad itself when mu has z's shape), so the fused kernel sums
    // grad_mu only for K > 1 samples, where it shares the pass over grad with grad_logvar.
    const bool one_sample = !has_sample_dim || grad_z.sym_size(0) == 1;
    if (need_logvar) {
      std::tie(grad_mu, grad_logvar) = call_backward_op(
          grad_z, logvar, rng_state, mu_size, has_sample_dim, need_mu && !one_sample);
      grad_logvar = grad_logvar.to(logvar.scalar_type());
    }
    if (need_mu && (one_sample || !need_logvar)) {
      if (has_sample_dim) grad_z = one_sample ? grad_z.select(0, 0) : grad_z.sum(0);
      grad_mu = grad_z.sum_to_size_symint(mu_size);
    }
    if (need_mu) grad_mu = grad_mu.to(mu_dtype);
    // One gradient per forward argument after ctx: mu, logvar, has_sample_dim, sample.
    return {grad_mu, grad_logvar, at::Tensor(), at::Tensor()};
  }
};

std::tuple<at::Tensor, at::Tensor> gaussian_rsample_autograd(
    const at::Tensor& mu, const at::Tensor& logvar, std::optional<c10::SymInt> num_samples,
    std::optional<at::Generator> generator) {
  static const auto op = typed_op<std::tuple<at::Tensor, at::Tensor>(
      const at::Tensor&, const at::Tensor&, std::optional<c10::SymInt>,
      std::optional<at::Generator>)>("gradext::gaussian_rsample");
  return as_pair(GaussianSample::apply(mu, logvar, num_samples.has_value(), [&] {
    return call_below_autograd(op, mu, logvar, num_samples, generator);
  }));
}

std::tuple<at::Tensor, at::Tensor> gaussian_rsample_seeded_autograd(
    const at::Tensor& mu, const at::Tensor& logvar, std::optional<c10::SymInt> num_samples,
    int64_t seed, int64_t offset) {
  static const auto op = typed_op<std::tuple<at::Tensor, at::Tensor>(
      const at::Tensor&, const at::Tensor&, std::optional<c10::SymInt>, int64_t, int64_t)>(
      "gradext::_gaussian_rsample_seeded");
  return as_pair(GaussianSample::apply(mu, logvar, num_samples.has_value(), [&] {
    return call_below_autograd(op, mu, logvar, num_samples, seed, offset);
  }));
}

std::tuple<at::Tensor, at::Tensor> gaussian_rsample_replay_autograd(
    const at::Tensor& mu, const at::Tensor& logvar, std::optional<c10::SymInt> num_samples,
    const at::Tensor& rng_state) {
  static const auto op = typed_op<std::tuple<at::Tensor, at::Tensor>(
      const at::Tensor&, const at::Tensor&, std::optional<c10::SymInt>, const at::Tensor&)>(
      "gradext::_gaussian_rsample_replay");
  return as_pair(GaussianSample::apply(mu, logvar, num_samples.has_value(), [&] {
    return call_below_autograd(op, mu, logvar, num_samples, rng_state);
  }));
}

}  // namespace
}  // namespace gradext::ops

TORCH_LIBRARY_IMPL(gradext, Autograd, m) {
  m.impl("gaussian_rsample", &gradext::ops::gaussian_rsample_autograd);
  m.impl("_gaussian_rsample_seeded", &gradext::ops::gaussian_rsample_seeded_autograd);
  m.impl("_gaussian_rsample_replay", &gradext::ops::gaussian_rsample_replay_autograd);
}

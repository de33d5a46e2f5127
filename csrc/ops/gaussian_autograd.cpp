// Autograd of the Gaussian sampling ops (gaussian_rsample and normal_rsample, each with its
// seeded and replay twins), registered in C++ at the Autograd key: an eager call builds its graph
// node without a Python frame on the way in or out, and torch.compile (AOTAutograd) traces the
// same node. torch.func refuses C++ autograd Functions, so under its transforms
// gradext/gaussian.py applies the same formula in Python (_sample_setup_context /
// _sample_backward: change both together; the contract tests compare them bitwise). The
// derivative of the fused backward (double backward) and the vmap rules are in
// gradext/gaussian.py only.
//
//   z = mean + sd(spread) * eps      (sd = exp(logvar / 2), or the scale itself)
//   grad_mean   = grad summed over the samples and the mean's broadcast dimensions
//   grad_spread = grad * eps * d sd / d spread, summed to the spread's shape (fused kernel that
//                 draws eps again from the saved Philox (seed, offset))
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include <string>

#include "ops/autograd_support.h"
#include "ops/gaussian.h"

namespace gradext::ops {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

using BackwardOp = c10::TypedOperatorHandle<std::tuple<at::Tensor, at::Tensor>(
    const at::Tensor&, const at::Tensor&, const at::Tensor&, c10::SymIntArrayRef, bool, bool)>;

template <typename P>
const BackwardOp& backward_op() {
  static const BackwardOp op = typed_op<std::tuple<at::Tensor, at::Tensor>(
      const at::Tensor&, const at::Tensor&, const at::Tensor&, c10::SymIntArrayRef, bool, bool)>(
      (std::string("gradext::_") + P::names.op + "_backward").c_str());
  return op;
}

template <typename P>
struct GaussianSample : torch::autograd::Function<GaussianSample<P>> {
  // `sample` runs the sampling op below autograd and returns its (z, rng_state).
  template <class Sample>
  static variable_list forward(AutogradContext* ctx, const at::Tensor& mean,
                               const at::Tensor& spread, bool has_sample_dim,
                               const Sample& sample) {
    auto [z, rng_state] = sample();
    // All that backward keeps: the spread and the 2-element (seed, offset); never the noise.
    ctx->save_for_backward({spread, rng_state});
    ctx->saved_data["mean_size"] = mean.sym_sizes().vec();
    ctx->saved_data["mean_dtype"] = mean.scalar_type();
    ctx->saved_data["has_sample_dim"] = has_sample_dim;
    ctx->mark_non_differentiable({rng_state});
    return {z, rng_state};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& spread = saved[0];
    const at::Tensor& rng_state = saved[1];
    const std::vector<c10::SymInt> mean_size = ctx->saved_data["mean_size"].toSymIntVector();
    const auto mean_dtype = ctx->saved_data["mean_dtype"].toScalarType();
    const bool has_sample_dim = ctx->saved_data["has_sample_dim"].toBool();
    const bool need_mean = ctx->needs_input_grad(0);
    const bool need_spread = ctx->needs_input_grad(1);
    at::Tensor grad_z = grads[0];
    at::Tensor grad_mean;
    at::Tensor grad_spread;
    // d z / d mean = 1: grad_mean is grad summed over the samples and broadcast dimensions. With
    // one sample that needs no kernel (grad itself when the mean has z's shape), so the fused
    // kernel sums grad_mean only for K > 1 samples, where it shares the pass over grad with
    // grad_spread.
    const bool one_sample = !has_sample_dim || grad_z.sym_size(0) == 1;
    if (need_spread) {
      BelowAutogradUnlessRecording below_autograd;
      std::tie(grad_mean, grad_spread) = backward_op<P>().call(
          grad_z, spread, rng_state, mean_size, has_sample_dim, need_mean && !one_sample);
      grad_spread = as_dtype(grad_spread, spread.scalar_type());
    }
    if (need_mean && (one_sample || !need_spread)) {
      if (has_sample_dim) grad_z = one_sample ? grad_z.select(0, 0) : grad_z.sum(0);
      // grad itself where the mean has z's shape (sum_to_size would return it, after a dispatch).
      const bool same_shape = grad_z.sym_sizes().equals(mean_size);
      grad_mean = same_shape ? grad_z : grad_z.sum_to_size_symint(mean_size);
    }
    // Not wanted (autograd.grad asked for the spread alone): undefined, not the kernel's empty
    // placeholder, which autograd would check against the mean's shape.
    grad_mean = need_mean ? as_dtype(grad_mean, mean_dtype) : at::Tensor();
    // One gradient per forward argument after ctx: mean, spread, has_sample_dim, sample.
    return {grad_mean, grad_spread, at::Tensor(), at::Tensor()};
  }
};

// The autograd kernels of one parametrization's three sampling ops.
template <typename P>
struct GaussianAutogradOps {
  // `sample` (the op below autograd) inside the Function, or alone where there is no gradient
  // to track (no node to build: about a microsecond and a half a call).
  template <class Sample>
  static std::tuple<at::Tensor, at::Tensor> with_autograd(const at::Tensor& mean,
                                                          const at::Tensor& spread,
                                                          bool has_sample_dim,
                                                          const Sample& sample) {
    if (!tracks_grad(mean, spread)) return sample();
    return as_pair(GaussianSample<P>::apply(mean, spread, has_sample_dim, sample));
  }

  static std::string name(const char* suffix) {
    return std::string("gradext::") + (suffix[0] ? "_" : "") + P::names.op + suffix;
  }

  static std::tuple<at::Tensor, at::Tensor> sample(const at::Tensor& mean,
                                                   const at::Tensor& spread,
                                                   std::optional<c10::SymInt> num_samples,
                                                   std::optional<at::Generator> generator) {
    static const auto op = typed_op<std::tuple<at::Tensor, at::Tensor>(
        const at::Tensor&, const at::Tensor&, std::optional<c10::SymInt>,
        std::optional<at::Generator>)>(name("").c_str());
    return with_autograd(mean, spread, num_samples.has_value(), [&] {
      return call_below_autograd(op, mean, spread, num_samples, generator);
    });
  }

  static std::tuple<at::Tensor, at::Tensor> seeded(const at::Tensor& mean,
                                                   const at::Tensor& spread,
                                                   std::optional<c10::SymInt> num_samples,
                                                   int64_t seed, int64_t offset) {
    static const auto op = typed_op<std::tuple<at::Tensor, at::Tensor>(
        const at::Tensor&, const at::Tensor&, std::optional<c10::SymInt>, int64_t, int64_t)>(
        name("_seeded").c_str());
    return with_autograd(mean, spread, num_samples.has_value(), [&] {
      return call_below_autograd(op, mean, spread, num_samples, seed, offset);
    });
  }

  static std::tuple<at::Tensor, at::Tensor> replay(const at::Tensor& mean,
                                                   const at::Tensor& spread,
                                                   std::optional<c10::SymInt> num_samples,
                                                   const at::Tensor& rng_state) {
    static const auto op = typed_op<std::tuple<at::Tensor, at::Tensor>(
        const at::Tensor&, const at::Tensor&, std::optional<c10::SymInt>, const at::Tensor&)>(
        name("_replay").c_str());
    return with_autograd(mean, spread, num_samples.has_value(), [&] {
      return call_below_autograd(op, mean, spread, num_samples, rng_state);
    });
  }
};

}  // namespace
}  // namespace gradext::ops

TORCH_LIBRARY_IMPL(gradext, Autograd, m) {
  using gradext::ops::GaussianAutogradOps;
  using LogVar = GaussianAutogradOps<gradext::ops::LogVarParametrization>;
  using Scale = GaussianAutogradOps<gradext::ops::ScaleParametrization>;
  m.impl("gaussian_rsample", &LogVar::sample);
  m.impl("_gaussian_rsample_seeded", &LogVar::seeded);
  m.impl("_gaussian_rsample_replay", &LogVar::replay);
  m.impl("normal_rsample", &Scale::sample);
  m.impl("_normal_rsample_seeded", &Scale::seeded);
  m.impl("_normal_rsample_replay", &Scale::replay);
}

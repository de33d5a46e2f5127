// Autograd of the Gaussian sampling ops (gaussian_rsample and normal_rsample, each with its
// seeded and replay twins), registered in C++ at the Autograd key: an eager call builds its graph
// node (a plain autograd Node, ops/autograd_node.h) without a Python frame on the way in or out,
// and torch.compile (AOTAutograd) traces the same node. Under torch.func's transforms the Python
// entries apply the same formula in Python instead (gradext/gaussian.py, _sample_setup_context /
// _sample_backward: change both together; the contract tests compare them bitwise). The
// derivative of the fused backward (double backward) and the vmap rules are in
// gradext/gaussian.py only.
//
//   z = mean + sd(spread) * eps      (sd = exp(logvar / 2), or the scale itself)
//   grad_mean   = grad summed over the samples and the mean's broadcast dimensions
//   grad_spread = grad * eps * d sd / d spread, summed to the spread's shape (fused kernel that
//                 draws eps again from the saved Philox (seed, offset))
#include <torch/library.h>

#include <mutex>
#include <string>

#include "ops/autograd_node.h"
#include "ops/autograd_support.h"
#include "ops/gaussian.h"

namespace gradext::ops {
namespace {

using torch::autograd::SavedVariable;
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

// The graph node of one sample call (ops/autograd_node.h): next edges (mean, spread), one input
// (the gradient of z; rng_state is not differentiable).
template <typename P>
struct GaussianSampleBackward : torch::autograd::Node {
  // All that backward keeps: the spread and the 2-element (seed, offset); never the noise.
  SavedVariable spread;
  SavedVariable rng_state;
  std::vector<c10::SymInt> mean_size;
  at::ScalarType mean_dtype = at::kFloat;
  bool has_sample_dim = false;

  std::string name() const override {
    return std::string("gradext::") + P::names.op + "Backward";
  }

  void release_variables() override {
    std::lock_guard<std::mutex> lock(mutex_);
    spread.reset_data();
    rng_state.reset_data();
  }

  variable_list apply(variable_list&& grads) override {
    std::lock_guard<std::mutex> lock(mutex_);
    const bool need_mean = task_should_compute_output(0);
    const bool need_spread = task_should_compute_output(1);
    at::Tensor grad_z = grads[0];
    if (!grad_z.defined()) return {at::Tensor(), at::Tensor()};
    at::Tensor grad_mean;
    at::Tensor grad_spread;
    // d z / d mean = 1: grad_mean is grad summed over the samples and broadcast dimensions. With
    // one sample that needs no kernel (grad itself when the mean has z's shape), so the fused
    // kernel sums grad_mean only for K > 1 samples, where it shares the pass over grad with
    // grad_spread.
    const bool one_sample = !has_sample_dim || grad_z.sym_size(0) == 1;
    if (need_spread) {
      const at::Tensor saved_spread = spread.unpack();
      BelowAutogradUnlessRecording below_autograd;
      std::tie(grad_mean, grad_spread) =
          backward_op<P>().call(grad_z, saved_spread, rng_state.unpack(), mean_size,
                                has_sample_dim, need_mean && !one_sample);
      grad_spread = as_dtype(grad_spread, saved_spread.scalar_type());
    }
    if (need_mean && (one_sample || !need_spread)) {
      if (has_sample_dim) grad_z = one_sample ? grad_z.select(0, 0) : grad_z.sum(0);
      // grad itself where the mean has z's shape (sum_to_size would return it, after a dispatch).
      const bool same_shape = grad_z.sym_sizes().equals(mean_size);
      grad_mean = same_shape ? grad_z : grad_z.sum_to_size_symint(mean_size);
    }
    // Not wanted: undefined, not the kernel's empty placeholder.
    grad_mean = need_mean ? as_dtype(grad_mean, mean_dtype) : at::Tensor();
    return {grad_mean, need_spread ? grad_spread : at::Tensor()};
  }
};

// The autograd kernels of one parametrization's three sampling ops.
template <typename P>
struct GaussianAutogradOps {
  // `sample` (the op below autograd), then the node that differentiates it, where there is a
  // gradient to track (else no node: about a microsecond and a half a call).
  template <class Sample>
  static std::tuple<at::Tensor, at::Tensor> with_autograd(const at::Tensor& mean,
                                                          const at::Tensor& spread,
                                                          bool has_sample_dim,
                                                          const Sample& sample) {
    check_no_forward_grad(P::names.op, mean, spread);
    if (!tracks_grad(mean, spread)) return sample();
    auto [z, rng_state] = sample();
    auto node = make_node_for<GaussianSampleBackward<P>>(mean, spread);
    node->spread = SavedVariable(spread, /*is_output=*/false);
    node->rng_state = SavedVariable(rng_state, /*is_output=*/false);
    node->mean_size = mean.sym_sizes().vec();
    node->mean_dtype = mean.scalar_type();
    node->has_sample_dim = has_sample_dim;
    torch::autograd::set_history(z, node);
    return {z, rng_state};
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

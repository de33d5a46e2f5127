// Autograd of the von Mises sampling ops (von_mises_rsample and its seeded twin), registered in
// C++ at the Autograd key (see csrc/ops/gaussian_autograd.cpp for why). torch.func refuses C++
// autograd Functions, so under its transforms gradext/von_mises.py applies the same formula in
// Python (_sample_setup_context / _sample_backward: change both together; the contract tests
// compare them bitwise). The derivative of the fused backward and the vmap rules are in
// gradext/von_mises.py only.
//
//   x = wrap(loc + delta),  delta ~ von Mises(0, concentration)
//   grad_loc           = grad, summed to loc's shape
//   grad_concentration = grad * d delta / d concentration (implicit, from the saved x), summed
//                        to concentration's shape
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include "ops/autograd_support.h"

namespace gradext::ops {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

at::Tensor call_backward_op(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& loc,
                            const at::Tensor& concentration) {
  static const auto op = typed_op<at::Tensor(const at::Tensor&, const at::Tensor&,
                                             const at::Tensor&, const at::Tensor&)>(
      "gradext::_von_mises_rsample_backward");
  BelowAutogradUnlessRecording below_autograd;
  return op.call(grad, x, loc, concentration);
}

struct VonMisesSample : torch::autograd::Function<VonMisesSample> {
  // `sample` runs the sampling op below autograd and returns x.
  template <class Sample>
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& loc,
                            const at::Tensor& concentration, const Sample& sample) {
    at::Tensor x = sample();
    // The backward reads the sample itself: no rejection loop is run again.
    ctx->save_for_backward({loc, concentration, x});
    return x;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& loc = saved[0];
    const at::Tensor& concentration = saved[1];
    const at::Tensor& x = saved[2];
    const bool need_loc = ctx->needs_input_grad(0);
    const bool need_concentration = ctx->needs_input_grad(1);
    at::Tensor grad_loc, grad_concentration;
    if (need_loc) {
      grad_loc = grads[0].sum_to_size_symint(loc.sym_sizes()).to(loc.scalar_type());
    }
    if (need_concentration) {
      grad_concentration = call_backward_op(grads[0], x, loc, concentration)
                               .sum_to_size_symint(concentration.sym_sizes())
                               .to(concentration.scalar_type());
    }
    // One gradient per forward argument after ctx: loc, concentration, sample.
    return {grad_loc, grad_concentration, at::Tensor()};
  }
};

at::Tensor von_mises_rsample_autograd(const at::Tensor& loc, const at::Tensor& concentration,
                                      std::optional<c10::SymInt> num_samples,
                                      std::optional<at::Generator> generator) {
  static const auto op = typed_op<at::Tensor(const at::Tensor&, const at::Tensor&,
                                             std::optional<c10::SymInt>,
                                             std::optional<at::Generator>)>(
      "gradext::von_mises_rsample");
  return VonMisesSample::apply(loc, concentration, [&] {
    return call_below_autograd(op, loc, concentration, num_samples, generator);
  });
}

at::Tensor von_mises_rsample_seeded_autograd(const at::Tensor& loc,
                                             const at::Tensor& concentration,
                                             std::optional<c10::SymInt> num_samples,
                                             int64_t seed, int64_t offset) {
  static const auto op = typed_op<at::Tensor(const at::Tensor&, const at::Tensor&,
                                             std::optional<c10::SymInt>, int64_t, int64_t)>(
      "gradext::_von_mises_rsample_seeded");
  return VonMisesSample::apply(loc, concentration, [&] {
    return call_below_autograd(op, loc, concentration, num_samples, seed, offset);
  });
}

}  // namespace
}  // namespace gradext::ops

TORCH_LIBRARY_IMPL(gradext, Autograd, m) {
  m.impl("von_mises_rsample", &gradext::ops::von_mises_rsample_autograd);
  m.impl("_von_mises_rsample_seeded", &gradext::ops::von_mises_rsample_seeded_autograd);
}

// Autograd of the Gamma sampling ops (gamma_rsample and its seeded twin), registered in C++ at
// the Autograd key (see csrc/ops/gaussian_autograd.cpp for why). torch.func refuses C++ autograd
// Functions, so under its transforms gradext/gamma.py applies the same formula in Python
// (_sample_setup_context / _sample_backward: change both together; the contract tests compare
// them bitwise). The derivative of the fused backward and the vmap rules are in gradext/gamma.py
// only.
//
//   z = standard_gamma(concentration) / rate
//   grad_concentration = grad * dz/dconcentration (implicit, from the saved z), summed to
//                        concentration's shape
//   grad_rate          = -grad * z / rate, summed to rate's shape
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include "ops/autograd_support.h"

namespace gradext::ops {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

std::tuple<at::Tensor, at::Tensor> call_backward_op(const at::Tensor& grad, const at::Tensor& z,
                                                    const at::Tensor& concentration,
                                                    const at::Tensor& rate,
                                                    std::array<bool, 2> output_mask) {
  static const auto op = typed_op<std::tuple<at::Tensor, at::Tensor>(
      const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
      std::array<bool, 2>)>("gradext::_gamma_rsample_backward");
  BelowAutogradUnlessRecording below_autograd;
  return op.call(grad, z, concentration, rate, output_mask);
}

struct GammaSample : torch::autograd::Function<GammaSample> {
  // `sample` runs the sampling op below autograd and returns z.
  template <class Sample>
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& concentration,
                            const at::Tensor& rate, const Sample& sample) {
    at::Tensor z = sample();
    // The backward reads the sample itself: no rejection loop is run again.
    ctx->save_for_backward({concentration, rate, z});
    return z;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& concentration = saved[0];
    const at::Tensor& rate = saved[1];
    const at::Tensor& z = saved[2];
    const bool need_concentration = ctx->needs_input_grad(0);
    const bool need_rate = ctx->needs_input_grad(1);
    auto [grad_concentration, grad_rate] =
        call_backward_op(grads[0], z, concentration, rate, {need_concentration, need_rate});
    if (need_concentration) {
      grad_concentration = grad_concentration.sum_to_size_symint(concentration.sym_sizes())
                               .to(concentration.scalar_type());
    }
    if (need_rate) {
      grad_rate = grad_rate.sum_to_size_symint(rate.sym_sizes()).to(rate.scalar_type());
    }
    // One gradient per forward argument after ctx: concentration, rate, sample.
    return {need_concentration ? grad_concentration : at::Tensor(),
            need_rate ? grad_rate : at::Tensor(), at::Tensor()};
  }
};

at::Tensor gamma_rsample_autograd(const at::Tensor& concentration, const at::Tensor& rate,
                                  std::optional<c10::SymInt> num_samples,
                                  std::optional<at::Generator> generator) {
  static const auto op = typed_op<at::Tensor(const at::Tensor&, const at::Tensor&,
                                             std::optional<c10::SymInt>,
                                             std::optional<at::Generator>)>(
      "gradext::gamma_rsample");
  return GammaSample::apply(concentration, rate, [&] {
    return call_below_autograd(op, concentration, rate, num_samples, generator);
  });
}

at::Tensor gamma_rsample_seeded_autograd(const at::Tensor& concentration, const at::Tensor& rate,
                                         std::optional<c10::SymInt> num_samples, int64_t seed,
                                         int64_t offset) {
  static const auto op = typed_op<at::Tensor(const at::Tensor&, const at::Tensor&,
                                             std::optional<c10::SymInt>, int64_t, int64_t)>(
      "gradext::_gamma_rsample_seeded");
  return GammaSample::apply(concentration, rate, [&] {
    return call_below_autograd(op, concentration, rate, num_samples, seed, offset);
  });
}

}  // namespace
}  // namespace gradext::ops

TORCH_LIBRARY_IMPL(gradext, Autograd, m) {
  m.impl("gamma_rsample", &gradext::ops::gamma_rsample_autograd);
  m.impl("_gamma_rsample_seeded", &gradext::ops::gamma_rsample_seeded_autograd);
}

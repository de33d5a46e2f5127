// CPU implementation of the gamma_rsample ops: seeding from the CPU generator, the per-ISA
// kernels (gamma_cpu_impl.h), at::parallel_for over the output elements, the parameter check,
// and the dispatcher registration. Every element draws from its own Philox sub-stream, so the
// result does not depend on how parallel_for splits the work.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <torch/library.h>

#include <algorithm>
#include <limits>

#include "common/gamma_element.h"
#include "common/layout2d.h"
#include "ops/cpu/cpu_generator.h"
#include "ops/cpu/cpu_isa.h"
#include "ops/cpu/first_invalid.h"
#include "ops/cpu/gamma_cpu_args.h"
#include "ops/gamma.h"

#define GRADEXT_PER_ISA_BODY "ops/cpu/gamma_cpu_impl.h"
#include "ops/cpu/per_isa.h"

namespace gradext::cpu {
namespace {

// Elements per parallel task: a forward element costs about 0.1 us (one or two proposals), a
// backward element 0.1 to 4 us (the series' length grows with sqrt(concentration)).
constexpr int64_t kForwardGrain = 2048;
constexpr int64_t kBackwardGrain = 256;

template <typename scalar_t>
[[noreturn]] void throw_invalid(const ops::GammaForwardProblem& p, int64_t element) {
  const int64_t s = element % p.sample_numel;
  const auto alpha =
      static_cast<double>(p.concentration.const_data_ptr<scalar_t>()[p.layout.offset(0, s)]);
  const auto beta = static_cast<double>(p.rate.const_data_ptr<scalar_t>()[p.layout.offset(1, s)]);
  const bool alpha_valid = gamma_sampler::valid_parameter(alpha);
  ops::throw_invalid_gamma_parameter({s, alpha_valid, alpha_valid ? beta : alpha});
}

at::Tensor gamma_forward_cpu(const ops::GammaForwardProblem& p, uint64_t seed, uint64_t offset) {
  at::Tensor z = at::empty(p.out_shape, p.concentration.options());
  if (z.numel() == 0) return z;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, z.scalar_type(),
                                  "gamma_rsample_forward_cpu", [&] {
    const GammaForwardArgs args{p.concentration.const_data_ptr(), p.rate.const_data_ptr(),
                                z.mutable_data_ptr(), p.layout, p.sample_numel, seed, offset};
    const GammaForwardRange range = GRADEXT_SELECT_ISA(active_isa(), gamma_forward_range, scalar_t);
    FirstInvalid invalid;
    at::parallel_for(0, z.numel(), kForwardGrain, [&](int64_t begin, int64_t end) {
      const int64_t first = range(args, begin, end);
      if (first >= 0) invalid.record(first);
    });
    if (invalid.found()) throw_invalid<scalar_t>(p, invalid.element());
  });
  return z;
}

at::Tensor gamma_rsample_cpu(const at::Tensor& concentration, const at::Tensor& rate,
                             std::optional<int64_t> num_samples,
                             std::optional<at::Generator> generator) {
  const ops::GammaForwardProblem p =
      ops::make_gamma_forward_problem(concentration, rate, num_samples);
  const uint64_t seed = c10::multiply_integers(p.out_shape) > 0 ? draw_seed(generator) : 0;
  return gamma_forward_cpu(p, seed, 0);
}

at::Tensor gamma_rsample_seeded_cpu(const at::Tensor& concentration, const at::Tensor& rate,
                                    std::optional<int64_t> num_samples, int64_t seed,
                                    int64_t offset) {
  const ops::GammaForwardProblem p =
      ops::make_gamma_forward_problem(concentration, rate, num_samples);
  return gamma_forward_cpu(p, static_cast<uint64_t>(seed), static_cast<uint64_t>(offset));
}

std::tuple<at::Tensor, at::Tensor> gamma_rsample_backward_cpu(const at::Tensor& grad,
                                                              const at::Tensor& z,
                                                              const at::Tensor& concentration,
                                                              const at::Tensor& rate,
                                                              std::array<bool, 2> output_mask) {
  const ops::GammaBackwardProblem p =
      ops::make_gamma_backward_problem(grad, z, concentration, rate);
  // Named tensors, not a structured binding: the C++17 build's lambdas cannot capture one.
  at::Tensor grad_concentration, grad_rate;
  std::tie(grad_concentration, grad_rate) = ops::empty_gamma_grads(p, output_mask);
  if (p.z.numel() > 0 && (output_mask[0] || output_mask[1])) {
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.grad.scalar_type(),
                                    "gamma_rsample_backward_cpu", [&] {
      const GammaBackwardArgs args{
          p.grad.const_data_ptr(), p.z.const_data_ptr(), p.concentration.const_data_ptr(),
          p.rate.const_data_ptr(), output_mask[0] ? grad_concentration.mutable_data_ptr() : nullptr,
          output_mask[1] ? grad_rate.mutable_data_ptr() : nullptr, p.layout, p.sample_numel};
      const GammaBackwardRange range =
          GRADEXT_SELECT_ISA(active_isa(), gamma_backward_range, scalar_t);
      at::parallel_for(0, p.z.numel(), kBackwardGrain,
                       [&](int64_t begin, int64_t end) { range(args, begin, end); });
    });
  }
  return {grad_concentration, grad_rate};
}

}  // namespace
}  // namespace gradext::cpu

TORCH_LIBRARY_IMPL(gradext, CPU, m) {
  m.impl("gamma_rsample", &gradext::cpu::gamma_rsample_cpu);
  m.impl("_gamma_rsample_seeded", &gradext::cpu::gamma_rsample_seeded_cpu);
  m.impl("_gamma_rsample_backward", &gradext::cpu::gamma_rsample_backward_cpu);
}

// CPU implementation of the gamma_rsample ops: seeding from the CPU generator, at::parallel_for
// over the output elements, the parameter check, and the dispatcher registration.
//
// Compiled once, not once per ISA (per_isa.h): each element runs a scalar rejection loop
// (csrc/common/gamma_sampler.h) or a scalar series (gamma_math.h) whose length depends on the
// element, so there is no loop for the vectorizer and the AVX2 and AVX-512 copies would be the
// same code. Every element draws from its own Philox sub-stream, so the result does not depend
// on how parallel_for splits the work.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <limits>

#include "common/gamma_element.h"
#include "ops/cpu/cpu_generator.h"
#include "ops/gamma.h"

namespace gradext::cpu {
namespace {

// Elements per parallel task: a forward element costs about 0.1 us (one or two proposals), a
// backward element 0.1 to 4 us (the series' length grows with sqrt(concentration)).
constexpr int64_t kForwardGrain = 2048;
constexpr int64_t kBackwardGrain = 256;

// The smallest flat output element whose parameters were invalid, over all tasks.
class FirstInvalid {
 public:
  void record(int64_t element) {
    int64_t seen = first_.load(std::memory_order_relaxed);
    while (element < seen && !first_.compare_exchange_weak(seen, element)) {
    }
  }
  bool found() const { return first_.load() != kNone; }
  int64_t element() const { return first_.load(); }

 private:
  static constexpr int64_t kNone = std::numeric_limits<int64_t>::max();
  std::atomic<int64_t> first_{kNone};
};

template <typename scalar_t>
void gamma_forward_range(const ops::GammaForwardProblem& p, scalar_t* z, uint64_t seed,
                         uint64_t offset, int64_t begin, int64_t end, FirstInvalid& invalid) {
  using opmath_t = at::opmath_type<scalar_t>;
  const auto* concentration = p.concentration.const_data_ptr<scalar_t>();
  const auto* rate = p.rate.const_data_ptr<scalar_t>();
  Layout2DCursor at(p.layout, begin % p.sample_numel);  // wraps from sample to sample
  for (int64_t e = begin; e < end; ++e, at.advance()) {
    const auto alpha = static_cast<opmath_t>(concentration[at.offset(0)]);
    const auto beta = static_cast<opmath_t>(rate[at.offset(1)]);
    if (!gamma_sampler::valid_parameter(alpha) || !gamma_sampler::valid_parameter(beta)) {
      invalid.record(e);
      z[e] = std::numeric_limits<scalar_t>::quiet_NaN();
      continue;
    }
    z[e] = static_cast<scalar_t>(gamma_sampler::gamma_sample<scalar_t>(
        seed, offset, static_cast<uint64_t>(e), alpha, beta));
  }
}

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
    auto* out = z.mutable_data_ptr<scalar_t>();
    FirstInvalid invalid;
    at::parallel_for(0, z.numel(), kForwardGrain, [&](int64_t begin, int64_t end) {
      gamma_forward_range<scalar_t>(p, out, seed, offset, begin, end, invalid);
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

template <typename scalar_t>
void gamma_backward_range(const ops::GammaBackwardProblem& p, scalar_t* grad_concentration,
                          scalar_t* grad_rate, int64_t begin, int64_t end) {
  const auto* grad = p.grad.const_data_ptr<scalar_t>();
  const auto* z = p.z.const_data_ptr<scalar_t>();
  const auto* concentration = p.concentration.const_data_ptr<scalar_t>();
  const auto* rate = p.rate.const_data_ptr<scalar_t>();
  Layout2DCursor at(p.layout, begin % p.sample_numel);
  for (int64_t e = begin; e < end; ++e, at.advance()) {
    const auto g = static_cast<double>(grad[e]);
    const auto zv = static_cast<double>(z[e]);
    const auto beta = static_cast<double>(rate[at.offset(1)]);
    if (grad_concentration != nullptr) {
      const auto alpha = static_cast<double>(concentration[at.offset(0)]);
      grad_concentration[e] =
          static_cast<scalar_t>(gamma_sampler::grad_concentration<scalar_t>(g, zv, alpha, beta));
    }
    if (grad_rate != nullptr) {
      grad_rate[e] = static_cast<scalar_t>(gamma_sampler::grad_rate(g, zv, beta));
    }
  }
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
      scalar_t* d_alpha = output_mask[0] ? grad_concentration.mutable_data_ptr<scalar_t>() : nullptr;
      scalar_t* d_rate = output_mask[1] ? grad_rate.mutable_data_ptr<scalar_t>() : nullptr;
      at::parallel_for(0, p.z.numel(), kBackwardGrain, [&](int64_t begin, int64_t end) {
        gamma_backward_range<scalar_t>(p, d_alpha, d_rate, begin, end);
      });
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

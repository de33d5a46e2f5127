// CPU implementation of the von_mises_rsample ops: seeding from the CPU generator, the per-ISA
// kernels (von_mises_cpu_impl.h), at::parallel_for over the output elements, the parameter
// check, and the dispatcher registration. Every element draws from its own Philox sub-stream,
// so the result does not depend on how parallel_for splits the work.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <torch/library.h>

#include <limits>

#include "common/layout2d.h"
#include "common/von_mises_sampler.h"
#include "ops/cpu/cpu_generator.h"
#include "ops/cpu/cpu_isa.h"
#include "ops/cpu/first_invalid.h"
#include "ops/cpu/von_mises_cpu_args.h"
#include "ops/von_mises.h"

#define GRADEXT_PER_ISA_BODY "ops/cpu/von_mises_cpu_impl.h"
#include "ops/cpu/per_isa.h"

namespace gradext::cpu {
namespace {

// Elements per parallel task: a forward element costs about 0.1 us (one or two proposals), a
// backward element about 1 us (a 24- or 32-node quadrature).
constexpr int64_t kForwardGrain = 2048;
constexpr int64_t kBackwardGrain = 256;

template <typename scalar_t>
[[noreturn]] void throw_invalid(const ops::VonMisesForwardProblem& p, int64_t element) {
  const int64_t s = element % p.sample_numel;
  const auto loc = static_cast<double>(p.loc.const_data_ptr<scalar_t>()[p.layout.offset(0, s)]);
  const auto kappa =
      static_cast<double>(p.concentration.const_data_ptr<scalar_t>()[p.layout.offset(1, s)]);
  const bool loc_valid = von_mises_sampler::valid_loc(loc);
  ops::throw_invalid_von_mises_parameter({s, loc_valid, loc_valid ? kappa : loc});
}

at::Tensor von_mises_forward_cpu(const ops::VonMisesForwardProblem& p, uint64_t seed,
                                 uint64_t offset) {
  at::Tensor x = at::empty(p.out_shape, p.loc.options());
  if (x.numel() == 0) return x;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(),
                                  "von_mises_rsample_forward_cpu", [&] {
    const VonMisesForwardArgs args{p.loc.const_data_ptr(), p.concentration.const_data_ptr(),
                                   x.mutable_data_ptr(), p.layout, p.sample_numel, seed, offset};
    const VonMisesForwardRange range =
        GRADEXT_SELECT_ISA(active_isa(), von_mises_forward_range, scalar_t);
    FirstInvalid invalid;
    at::parallel_for(0, x.numel(), kForwardGrain, [&](int64_t begin, int64_t end) {
      const int64_t first = range(args, begin, end);
      if (first >= 0) invalid.record(first);
    });
    if (invalid.found()) throw_invalid<scalar_t>(p, invalid.element());
  });
  return x;
}

at::Tensor von_mises_rsample_cpu(const at::Tensor& loc, const at::Tensor& concentration,
                                 std::optional<int64_t> num_samples,
                                 std::optional<at::Generator> generator) {
  const ops::VonMisesForwardProblem p =
      ops::make_von_mises_forward_problem(loc, concentration, num_samples);
  const uint64_t seed = c10::multiply_integers(p.out_shape) > 0 ? draw_seed(generator) : 0;
  return von_mises_forward_cpu(p, seed, 0);
}

at::Tensor von_mises_rsample_seeded_cpu(const at::Tensor& loc, const at::Tensor& concentration,
                                        std::optional<int64_t> num_samples, int64_t seed,
                                        int64_t offset) {
  const ops::VonMisesForwardProblem p =
      ops::make_von_mises_forward_problem(loc, concentration, num_samples);
  return von_mises_forward_cpu(p, static_cast<uint64_t>(seed), static_cast<uint64_t>(offset));
}

at::Tensor von_mises_rsample_backward_cpu(const at::Tensor& grad, const at::Tensor& x,
                                          const at::Tensor& loc,
                                          const at::Tensor& concentration) {
  const ops::VonMisesBackwardProblem p =
      ops::make_von_mises_backward_problem(grad, x, loc, concentration);
  at::Tensor grad_concentration = at::empty(p.x.sizes(), p.grad.options());
  if (p.x.numel() == 0) return grad_concentration;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.grad.scalar_type(),
                                  "von_mises_rsample_backward_cpu", [&] {
    const VonMisesBackwardArgs args{p.grad.const_data_ptr(), p.x.const_data_ptr(),
                                    p.loc.const_data_ptr(),  p.concentration.const_data_ptr(),
                                    grad_concentration.mutable_data_ptr(), p.layout,
                                    p.sample_numel};
    const VonMisesBackwardRange range =
        GRADEXT_SELECT_ISA(active_isa(), von_mises_backward_range, scalar_t);
    at::parallel_for(0, p.x.numel(), kBackwardGrain,
                     [&](int64_t begin, int64_t end) { range(args, begin, end); });
  });
  return grad_concentration;
}

}  // namespace
}  // namespace gradext::cpu

TORCH_LIBRARY_IMPL(gradext, CPU, m) {
  m.impl("von_mises_rsample", &gradext::cpu::von_mises_rsample_cpu);
  m.impl("_von_mises_rsample_seeded", &gradext::cpu::von_mises_rsample_seeded_cpu);
  m.impl("_von_mises_rsample_backward", &gradext::cpu::von_mises_rsample_backward_cpu);
}

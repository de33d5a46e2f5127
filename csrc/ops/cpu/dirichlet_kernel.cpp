// CPU implementation of the dirichlet_rsample ops: seeding from the CPU generator, the per-ISA
// kernels (dirichlet_cpu_impl.h), at::parallel_for over rows (simplices), the concentration
// check, and the dispatcher registration.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <limits>

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include "common/gamma_element.h"
#include "common/layout2d.h"
#include "ops/cpu/cpu_generator.h"
#include "ops/cpu/cpu_isa.h"
#include "ops/cpu/dirichlet_cpu_args.h"
#include "ops/cpu/first_invalid.h"
#include "ops/cpu/gamma_cpu_args.h"
#include "ops/dirichlet.h"

#define GRADEXT_PER_ISA_BODY "ops/cpu/dirichlet_cpu_impl.h"
#include "ops/cpu/per_isa.h"

namespace gradext::cpu {
namespace {

// Output entries per parallel task (about 0.1 us each forward, up to a few us backward).
constexpr int64_t kEntriesPerTask = 2048;

int64_t rows_per_task(int64_t categories) {
  return std::max<int64_t>(1, kEntriesPerTask / categories);
}

std::tuple<at::Tensor, at::Tensor> dirichlet_forward_cpu(const ops::DirichletForwardProblem& p,
                                                         uint64_t seed, uint64_t offset) {
  const auto options = p.concentration.options().memory_format(at::MemoryFormat::Contiguous);
  at::Tensor x = at::empty(p.out_shape, options);
  at::Tensor log_gamma = at::empty(p.out_shape, options.dtype(p.log_gamma_dtype));
  if (x.numel() == 0) return {x, log_gamma};
  const int64_t K = p.categories;
  const int64_t rows = x.numel() / K;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(),
                                  "dirichlet_rsample_forward_cpu", [&] {
    const auto* concentration = p.concentration.const_data_ptr<scalar_t>();
    const DirichletForwardArgs args{concentration, x.mutable_data_ptr(),
                                    log_gamma.mutable_data_ptr(), p.layout, p.sample_numel, K,
                                    seed, offset};
    const DirichletForwardRows forward_rows =
        GRADEXT_SELECT_ISA(active_isa(), dirichlet_forward_rows, scalar_t);
    FirstInvalid first_invalid;
    at::parallel_for(0, rows, rows_per_task(K), [&](int64_t begin, int64_t end) {
      const int64_t bad = forward_rows(args, begin, end);
      if (bad >= 0) first_invalid.record(bad);
    });
    if (first_invalid.found()) {
      const int64_t s = first_invalid.element() % p.sample_numel;
      ops::throw_invalid_dirichlet_concentration(
          static_cast<double>(concentration[p.layout.offset(0, s)]), s);
    }
  });
  return {x, log_gamma};
}

std::tuple<at::Tensor, at::Tensor> dirichlet_rsample_cpu(const at::Tensor& concentration,
                                                         std::optional<int64_t> num_samples,
                                                         std::optional<at::Generator> generator) {
  const ops::DirichletForwardProblem p =
      ops::make_dirichlet_forward_problem(concentration, num_samples);
  const uint64_t seed = c10::multiply_integers(p.out_shape) > 0 ? draw_seed(generator) : 0;
  return dirichlet_forward_cpu(p, seed, 0);
}

std::tuple<at::Tensor, at::Tensor> dirichlet_rsample_seeded_cpu(
    const at::Tensor& concentration, std::optional<int64_t> num_samples, int64_t seed,
    int64_t offset) {
  const ops::DirichletForwardProblem p =
      ops::make_dirichlet_forward_problem(concentration, num_samples);
  return dirichlet_forward_cpu(p, static_cast<uint64_t>(seed), static_cast<uint64_t>(offset));
}

at::Tensor dirichlet_rsample_backward_cpu(const at::Tensor& grad, const at::Tensor& x,
                                          const at::Tensor& log_gamma,
                                          const at::Tensor& concentration) {
  const ops::DirichletBackwardProblem p =
      ops::make_dirichlet_backward_problem(grad, x, log_gamma, concentration);
  at::Tensor grad_concentration = at::empty(p.x.sizes(), p.x.options());
  if (p.x.numel() == 0) return grad_concentration;
  const int64_t K = p.categories;
  const int64_t rows = p.x.numel() / K;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.x.scalar_type(),
                                  "dirichlet_rsample_backward_cpu", [&] {
    const DirichletBackwardArgs args{p.grad.const_data_ptr(), p.x.const_data_ptr(),
                                     p.log_gamma.const_data_ptr(),
                                     p.concentration.const_data_ptr(),
                                     grad_concentration.mutable_data_ptr(), p.layout,
                                     p.sample_numel, K};
    const DirichletBackwardRows backward_rows =
        GRADEXT_SELECT_ISA(active_isa(), dirichlet_backward_rows, scalar_t);
    at::parallel_for(0, rows, rows_per_task(K),
                     [&](int64_t begin, int64_t end) { backward_rows(args, begin, end); });
  });
  return grad_concentration;
}

}  // namespace
}  // namespace gradext::cpu

TORCH_LIBRARY_IMPL(gradext, CPU, m) {
  m.impl("dirichlet_rsample", &gradext::cpu::dirichlet_rsample_cpu);
  m.impl("_dirichlet_rsample_seeded", &gradext::cpu::dirichlet_rsample_seeded_cpu);
  m.impl("_dirichlet_rsample_backward", &gradext::cpu::dirichlet_rsample_backward_cpu);
}

// CPU implementation of score_function_loo and vimco: per-ISA kernels over blocks of
// datapoints (score_function_cpu_impl.h), at::parallel_for over blocks, registration.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <type_traits>
#include <vector>

#include "common/leave_one_out.h"
#include "ops/cpu/cpu_isa.h"
#include "ops/cpu/score_function_cpu_args.h"
#include "ops/score_function.h"

#define GRADEXT_PER_ISA_BODY "ops/cpu/score_function_cpu_impl.h"
#include "ops/cpu/per_isa.h"

namespace gradext::cpu {
namespace {

enum class Kernel { kLooMean, kLooBackward, kVimcoForward, kVimcoBackward };

void run_blocks(Kernel kernel, const SampleBlockArgs& args, at::ScalarType dtype) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "gradext_score_function_cpu", [&] {
    using opmath_t = at::opmath_type<scalar_t>;
    const Isa isa = active_isa();
    SampleBlockRange range = nullptr;
    switch (kernel) {
      case Kernel::kLooMean: range = GRADEXT_SELECT_ISA(isa, loo_mean_blocks, scalar_t); break;
      case Kernel::kLooBackward: range = GRADEXT_SELECT_ISA(isa, loo_backward_blocks, scalar_t); break;
      case Kernel::kVimcoForward: range = GRADEXT_SELECT_ISA(isa, vimco_forward_blocks, scalar_t); break;
      case Kernel::kVimcoBackward: range = GRADEXT_SELECT_ISA(isa, vimco_backward_blocks, scalar_t); break;
    }
    // Only the RLOO backward reads the samples twice (VIMCO's saves its statistics instead).
    const int64_t cache_size =
        kernel == Kernel::kLooBackward ? sample_cache_size(args.samples, sizeof(opmath_t)) : 0;
    // About 8k values per task (from about 10 microseconds for RLOO to 80 for VIMCO here, above
    // what waking a thread costs); smaller problems stay on one thread.
    const int64_t grain = std::max<int64_t>(1, 8192 / (kSampleLanes * args.samples));
    at::parallel_for(0, lane_blocks(args), grain, [&](int64_t begin, int64_t end) {
      // Uninitialized: every value is written before it is read (a vector would zero it).
      const std::unique_ptr<opmath_t[]> cache(cache_size > 0 ? new opmath_t[cache_size] : nullptr);
      range(args, begin, end, cache.get());
    });
  });
}

SampleBlockArgs block_args(const ops::SampleAxisProblem& p) {
  return SampleBlockArgs{p.values.const_data_ptr(), nullptr, nullptr, nullptr, nullptr,
                         p.outer, p.samples, p.inner};
}

at::Tensor score_function_loo(const at::Tensor& f, const at::Tensor& log_prob, int64_t dim) {
  const auto p = ops::make_sample_axis_problem("score_function_loo", "f", f, "log_prob", log_prob, dim);
  at::Tensor out = at::empty(p.reduced_shape, p.values.options());
  if (out.numel() == 0) return out;
  SampleBlockArgs args = block_args(p);
  args.out = out.mutable_data_ptr();
  run_blocks(Kernel::kLooMean, args, p.values.scalar_type());
  return out;
}

at::Tensor score_function_loo_backward(const at::Tensor& grad, const at::Tensor& f, int64_t dim) {
  const auto p = ops::make_sample_axis_backward_problem("_score_function_loo_backward", grad, f, dim);
  at::Tensor out = at::empty_like(p.values);
  if (out.numel() == 0) return out;
  const at::Tensor g = grad.contiguous();
  SampleBlockArgs args = block_args(p);
  args.grad = g.const_data_ptr();
  args.out = out.mutable_data_ptr();
  run_blocks(Kernel::kLooBackward, args, p.values.scalar_type());
  return out;
}

std::tuple<at::Tensor, at::Tensor> vimco(const at::Tensor& log_weights, const at::Tensor& log_prob,
                                         int64_t dim) {
  const auto p = ops::make_sample_axis_problem("vimco", "log_weights", log_weights, "log_prob",
                                               log_prob, dim);
  at::Tensor out = at::empty(p.reduced_shape, p.values.options());
  at::Tensor stats = ops::make_vimco_stats(p);
  if (out.numel() == 0) return {out, stats};
  SampleBlockArgs args = block_args(p);
  args.out = out.mutable_data_ptr();
  args.stats = stats.mutable_data_ptr();
  run_blocks(Kernel::kVimcoForward, args, p.values.scalar_type());
  return {out, stats};
}

std::tuple<at::Tensor, at::Tensor> vimco_backward(const at::Tensor& grad,
                                                  const at::Tensor& log_weights,
                                                  const at::Tensor& stats, int64_t dim,
                                                  std::array<bool, 2> output_mask) {
  const auto p = ops::make_sample_axis_backward_problem("_vimco_backward", grad, log_weights, dim);
  ops::check_vimco_stats(stats, p);
  const auto empty = [&] { return at::empty({0}, p.values.options()); };
  at::Tensor grad_weights = output_mask[0] ? at::empty_like(p.values) : empty();
  at::Tensor grad_log_prob = output_mask[1] ? at::empty_like(p.values) : empty();
  if (p.values.numel() == 0 || !(output_mask[0] || output_mask[1])) {
    return {grad_weights, grad_log_prob};
  }
  const at::Tensor g = grad.contiguous();
  SampleBlockArgs args = block_args(p);
  args.grad = g.const_data_ptr();
  args.out = output_mask[0] ? grad_weights.mutable_data_ptr() : nullptr;
  args.out2 = output_mask[1] ? grad_log_prob.mutable_data_ptr() : nullptr;
  args.stats = stats.data_ptr();  // read only
  run_blocks(Kernel::kVimcoBackward, args, p.values.scalar_type());
  return {grad_weights, grad_log_prob};
}

}  // namespace
}  // namespace gradext::cpu

TORCH_LIBRARY_IMPL(gradext, CPU, m) {
  using namespace gradext::cpu;
  m.impl("score_function_loo", &score_function_loo);
  m.impl("_score_function_loo_backward", &score_function_loo_backward);
  m.impl("vimco", &vimco);
  m.impl("_vimco_backward", &vimco_backward);
}

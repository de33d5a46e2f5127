// CPU implementation of _first_invalid_parameter (csrc/ops/parameter_check.cpp): each value's
// distinct elements checked in blocks, branch-free within a block so that the compiler
// vectorizes it, with at::parallel_for over large values. Memory-bound and a few thousand
// elements at a VAE's sizes, so one build serves every CPU variant.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>

#include "common/parameter_constraint.h"
#include "ops/parameter_check.h"

namespace gradext::cpu {
namespace {

constexpr int64_t kBlock = 1024;   // elements between exits: a valid value is read whole
constexpr int64_t kGrain = 65536;  // elements per parallel task

// Counts the block's failures rather than stopping at the first: a branch-free integer sum of
// comparisons, which the compiler vectorizes (a bool reduction or an early exit it does not).
template <bool kPositive, typename scalar_t>
bool range_satisfies(const scalar_t* x, int64_t begin, int64_t end) {
  using math_t = at::opmath_type<scalar_t>;
  for (int64_t block = begin; block < end; block += kBlock) {
    const int64_t block_end = std::min(end, block + kBlock);
    int32_t failures = 0;
    for (int64_t i = block; i < block_end; ++i) {
      failures += satisfies_constraint(static_cast<math_t>(x[i]), kPositive) ? 0 : 1;
    }
    if (failures != 0) return false;
  }
  return true;
}

template <typename scalar_t>
bool range_satisfies(const scalar_t* x, int64_t begin, int64_t end, bool positive) {
  return positive ? range_satisfies<true>(x, begin, end) : range_satisfies<false>(x, begin, end);
}

bool value_satisfies(const at::Tensor& value, bool positive) {
  bool result = true;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, value.scalar_type(),
                                  "_first_invalid_parameter_cpu", [&] {
    const scalar_t* x = value.const_data_ptr<scalar_t>();
    const int64_t n = value.numel();
    if (n <= kGrain) {
      result = range_satisfies(x, 0, n, positive);
      return;
    }
    std::atomic<bool> all{true};
    at::parallel_for(0, n, kGrain, [&](int64_t begin, int64_t end) {
      if (all.load(std::memory_order_relaxed) && !range_satisfies(x, begin, end, positive)) {
        all.store(false, std::memory_order_relaxed);
      }
    });
    result = all.load();
  });
  return result;
}

int64_t first_invalid_parameter_cpu(at::TensorList values, const c10::List<bool>& positive) {
  const ops::ParameterCheckProblem p = ops::make_parameter_check_problem(values, positive);
  const auto count = static_cast<int64_t>(p.values.size());
  for (int64_t i = 0; i < count; ++i) {
    if (!value_satisfies(p.values[i], p.positive[i])) return i;
  }
  return count;
}

}  // namespace
}  // namespace gradext::cpu

TORCH_LIBRARY_IMPL(gradext, CPU, m) {
  m.impl("_first_invalid_parameter", &gradext::cpu::first_invalid_parameter_cpu);
}

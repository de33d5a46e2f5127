// CPU implementation of categorical_sample: seeding, per-ISA kernels (categorical_cpu_impl.h),
// at::parallel_for over rows and draws, registration.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "ops/categorical.h"
#include "ops/cpu/categorical_cpu_args.h"
#include "ops/cpu/cpu_generator.h"
#include "ops/cpu/cpu_isa.h"

#define GRADEXT_PER_ISA_BODY "ops/cpu/categorical_cpu_impl.h"
#include "ops/cpu/per_isa.h"

namespace gradext::cpu {
namespace {

// About 4k values per task (tens of microseconds: several times what waking a thread costs
// here); smaller problems stay on one thread.
int64_t row_grain(int64_t categories) {
  return std::max<int64_t>(1, 4096 / std::max<int64_t>(1, categories));
}

template <typename Args, typename Range>
void parallel_rows(int64_t items, int64_t categories, bool needs_scratch, const Args& args,
                   Range range, size_t opmath_size) {
  at::parallel_for(0, items, row_grain(categories), [&](int64_t begin, int64_t end) {
    std::vector<unsigned char> scratch(needs_scratch ? categories * opmath_size : 0);
    range(args, begin, end, scratch.data());
  });
}

std::tuple<at::Tensor, at::Tensor> categorical_forward(
    const at::Tensor& logits, int64_t num_samples, const std::optional<at::Generator>& generator,
    std::optional<std::pair<int64_t, int64_t>> seeded) {
  const ops::CategoricalProblem p = ops::make_categorical_problem(logits, num_samples);
  at::Tensor index = at::empty(p.out_shape, p.logits.options().dtype(at::kLong));
  at::Tensor log_prob = at::empty(p.out_shape, p.logits.options());
  if (index.numel() == 0) return {log_prob, index};
  const uint64_t seed = seeded ? static_cast<uint64_t>(seeded->first) : draw_seed(generator);
  const uint64_t offset = seeded ? static_cast<uint64_t>(seeded->second) : 0;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.logits.scalar_type(), "gradext_categorical_cpu", [&] {
    using opmath_t = at::opmath_type<scalar_t>;
    std::vector<opmath_t> log_normalizer(p.rows);
    const CategoricalForwardArgs args{p.logits.const_data_ptr(), index.mutable_data_ptr<int64_t>(),
                                      log_prob.mutable_data_ptr(), log_normalizer.data(),
                                      p.rows, p.categories, p.samples,
                                      PhiloxStream::make(seed, offset)};
    const Isa isa = active_isa();
    parallel_rows(p.rows, p.categories, true, args,
                  GRADEXT_SELECT_ISA(isa, categorical_normalizer_rows, scalar_t), sizeof(opmath_t));
    parallel_rows(p.rows * p.samples, p.categories, false, args,
                  GRADEXT_SELECT_ISA(isa, categorical_draw_rows, scalar_t), sizeof(opmath_t));
  });
  return {log_prob, index};
}

std::tuple<at::Tensor, at::Tensor> sample_op(const at::Tensor& logits, int64_t num_samples,
                                             std::optional<at::Generator> generator) {
  return categorical_forward(logits, num_samples, generator, std::nullopt);
}

std::tuple<at::Tensor, at::Tensor> seeded_op(const at::Tensor& logits, int64_t num_samples,
                                             int64_t seed, int64_t offset) {
  return categorical_forward(logits, num_samples, std::nullopt, std::make_pair(seed, offset));
}

at::Tensor backward_op(const at::Tensor& grad, const at::Tensor& logits, const at::Tensor& index) {
  ops::check_categorical_backward(grad, logits, index);
  const at::Tensor x = logits.contiguous();
  const at::Tensor g = grad.contiguous();
  const at::Tensor idx = index.contiguous();
  at::Tensor out = at::empty_like(x);
  if (out.numel() == 0) return out;
  const int64_t C = x.size(-1);
  const CategoricalBackwardArgs args{g.const_data_ptr(), x.const_data_ptr(),
                                     idx.const_data_ptr<int64_t>(), out.mutable_data_ptr(),
                                     x.numel() / C, C, index.size(0)};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "gradext_categorical_cpu", [&] {
    parallel_rows(args.rows, C, true, args,
                  GRADEXT_SELECT_ISA(active_isa(), categorical_backward_rows, scalar_t),
                  sizeof(at::opmath_type<scalar_t>));
  });
  return out;
}

}  // namespace
}  // namespace gradext::cpu

TORCH_LIBRARY_IMPL(gradext, CPU, m) {
  using namespace gradext::cpu;
  m.impl("categorical_sample", &sample_op);
  m.impl("_categorical_sample_seeded", &seeded_op);
  m.impl("_categorical_sample_backward", &backward_op);
}

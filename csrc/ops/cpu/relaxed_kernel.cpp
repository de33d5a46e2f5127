// CPU implementation of gumbel_softmax and gumbel_sigmoid: seeding, per-ISA kernels,
// at::parallel_for over rows (softmax) or tiles (sigmoid), dispatcher registration.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "ops/cpu/cpu_generator.h"
#include "ops/cpu/cpu_isa.h"
#include "ops/cpu/relaxed_cpu_args.h"
#include "ops/relaxed.h"

#define GRADEXT_PER_ISA_BODY "ops/cpu/relaxed_cpu_impl.h"
#include "ops/cpu/per_isa.h"

namespace gradext::cpu {
namespace {

using ops::Relaxation;

// Work items: rows for the softmax (each needs a scratch row), flat tiles for the sigmoid.
int64_t work_items(Relaxation r, int64_t rows, int64_t categories) {
  return r == Relaxation::kSoftmax ? rows
                                   : (rows * categories + kRelaxedTile - 1) / kRelaxedTile;
}

int64_t grain(Relaxation r, int64_t categories) {
  // About 4k elements per task (tens of microseconds: several times what waking a thread costs
  // here); smaller problems stay on one thread.
  return r == Relaxation::kSoftmax ? std::max<int64_t>(1, 4096 / std::max<int64_t>(1, categories))
                                   : 4;
}

std::tuple<at::Tensor, at::Tensor> relaxed_forward(Relaxation r, const at::Tensor& logits,
                                                   double tau, bool hard,
                                                   const std::optional<at::Generator>& generator,
                                                   std::optional<std::pair<int64_t, int64_t>> seeded) {
  const ops::RelaxedProblem p = ops::make_relaxed_problem(r, logits, tau);
  at::Tensor y = at::empty_like(p.logits);
  at::Tensor y_soft = hard ? at::empty_like(p.logits) : at::empty({0}, p.logits.options());
  if (p.logits.numel() == 0) return {y, y_soft};
  const uint64_t seed = seeded ? static_cast<uint64_t>(seeded->first) : draw_seed(generator);
  const uint64_t offset = seeded ? static_cast<uint64_t>(seeded->second) : 0;
  RelaxedForwardArgs args{p.logits.const_data_ptr(), y.mutable_data_ptr(),
                          hard ? y_soft.mutable_data_ptr() : nullptr, p.rows, p.categories,
                          p.inv_tau, PhiloxStream::make(seed, offset)};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, y.scalar_type(), "gradext_relaxed_cpu", [&] {
    using opmath_t = at::opmath_type<scalar_t>;
    const Isa isa = active_isa();
    const RelaxedForwardRange range = r == Relaxation::kSoftmax
                                          ? GRADEXT_SELECT_ISA(isa, gumbel_softmax_rows, scalar_t)
                                          : GRADEXT_SELECT_ISA(isa, gumbel_sigmoid_tiles, scalar_t);
    at::parallel_for(0, work_items(r, p.rows, p.categories), grain(r, p.categories),
                     [&](int64_t begin, int64_t end) {
                       std::vector<opmath_t> scratch(r == Relaxation::kSoftmax ? p.categories : 0);
                       range(args, begin, end, scratch.data());
                     });
  });
  return {y, y_soft};
}

at::Tensor relaxed_backward(Relaxation r, const at::Tensor& grad, const at::Tensor& y_soft,
                            double tau) {
  ops::check_relaxed_backward(r, grad, y_soft, tau);
  const at::Tensor g = grad.contiguous();
  const at::Tensor y = y_soft.contiguous();
  at::Tensor out = at::empty_like(y);
  if (y.numel() == 0) return out;
  const int64_t categories = y.dim() == 0 ? 1 : y.size(-1);
  RelaxedBackwardArgs args{g.const_data_ptr(), y.const_data_ptr(), out.mutable_data_ptr(),
                           y.numel() / categories, categories, 1.0 / tau};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, y.scalar_type(), "gradext_relaxed_cpu", [&] {
    using opmath_t = at::opmath_type<scalar_t>;
    const Isa isa = active_isa();
    const RelaxedBackwardRange range =
        r == Relaxation::kSoftmax ? GRADEXT_SELECT_ISA(isa, gumbel_softmax_backward_rows, scalar_t)
                                  : GRADEXT_SELECT_ISA(isa, gumbel_sigmoid_backward_tiles, scalar_t);
    at::parallel_for(0, work_items(r, args.rows, categories), grain(r, categories),
                     [&](int64_t begin, int64_t end) {
                       std::vector<opmath_t> scratch(r == Relaxation::kSoftmax ? categories : 0);
                       range(args, begin, end, scratch.data());
                     });
  });
  return out;
}

// The three ops of each relaxation, as registered with the dispatcher.
template <Relaxation R>
std::tuple<at::Tensor, at::Tensor> sample_op(const at::Tensor& logits, const at::Tensor& tau,
                                             bool hard, std::optional<at::Generator> generator) {
  return relaxed_forward(R, logits, ops::tau_value(R, tau), hard, generator, std::nullopt);
}

template <Relaxation R>
std::tuple<at::Tensor, at::Tensor> seeded_op(const at::Tensor& logits, const at::Tensor& tau,
                                             bool hard, int64_t seed, int64_t offset) {
  return relaxed_forward(R, logits, ops::tau_value(R, tau), hard, std::nullopt,
                         std::make_pair(seed, offset));
}

template <Relaxation R>
at::Tensor backward_op(const at::Tensor& grad, const at::Tensor& y_soft, const at::Tensor& tau) {
  return relaxed_backward(R, grad, y_soft, ops::tau_value(R, tau));
}

}  // namespace
}  // namespace gradext::cpu

TORCH_LIBRARY_IMPL(gradext, CPU, m) {
  using namespace gradext::cpu;
  m.impl("gumbel_softmax", &sample_op<Relaxation::kSoftmax>);
  m.impl("_gumbel_softmax_seeded", &seeded_op<Relaxation::kSoftmax>);
  m.impl("_gumbel_softmax_backward", &backward_op<Relaxation::kSoftmax>);
  m.impl("gumbel_sigmoid", &sample_op<Relaxation::kSigmoid>);
  m.impl("_gumbel_sigmoid_seeded", &seeded_op<Relaxation::kSigmoid>);
  m.impl("_gumbel_sigmoid_backward", &backward_op<Relaxation::kSigmoid>);
}

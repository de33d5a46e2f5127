// CPU implementation of conditional_relaxation: seeding, the per-ISA kernels, at::parallel_for
// over Bernoulli tiles or categorical rows, dispatcher registration.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <torch/library.h>

#include <algorithm>
#include <memory>

#include "common/conditional_relaxation.h"
#include "ops/conditional_relaxation.h"
#include "ops/cpu/conditional_relaxation_cpu_args.h"
#include "ops/cpu/cpu_generator.h"
#include "ops/cpu/cpu_isa.h"
#include "ops/gaussian.h"
#include "ops/relaxed.h"

#define GRADEXT_PER_ISA_BODY "ops/cpu/conditional_relaxation_cpu_impl.h"
#include "ops/cpu/per_isa.h"

namespace gradext::cpu {
namespace {

using ops::ConditionalRelaxationProblem;

int64_t num_tiles(int64_t elements) {
  return (elements + kConditionalTile - 1) / kConditionalTile;
}

// The work items of a problem: Bernoulli tiles, or categorical rows (grouped by the kernel into
// batches of whole rows); about 4k elements per task, smaller problems on one thread.
int64_t work_items(const ConditionalRelaxationProblem& p) {
  return p.categorical ? p.rows : num_tiles(p.categories);
}

int64_t grain(const ConditionalRelaxationProblem& p) {
  return p.categorical ? std::max<int64_t>(1, 4096 / std::max<int64_t>(1, p.categories))
                       : 4096 / kConditionalTile;
}

// Runs `range` over the problem's work items, each task with its own scratch.
void run_parallel(const ConditionalRelaxationProblem& p, const ConditionalRelaxationArgs& args,
                  ConditionalRelaxationRange range) {
  at::parallel_for(0, work_items(p), grain(p), [&](int64_t begin, int64_t end) {
    // Uninitialized (every array is written before it is read): a zero-filled vector cost a
    // memset of the whole scratch per task.
    std::unique_ptr<uint64_t[]> scratch;
    if (p.categorical) {
      scratch.reset(new uint64_t[conditional_scratch_bytes(p.categories) / 8 + 1]);
    }
    range(args, begin, end, scratch.get());
  });
}

ConditionalRelaxationArgs make_args(const ConditionalRelaxationProblem& p, uint64_t seed,
                                    uint64_t offset) {
  ConditionalRelaxationArgs args;
  args.logits = p.logits.const_data_ptr();
  args.rows = p.rows;
  args.categories = p.categories;
  args.inv_tau = p.inv_tau;
  args.stream = PhiloxStream::make(seed, offset);
  return args;
}

using Outputs = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

Outputs forward(const char* op, const at::Tensor& logits, const at::Tensor& tau,
                bool categorical, const std::optional<at::Generator>& generator,
                std::optional<std::pair<int64_t, int64_t>> seeded) {
  const ConditionalRelaxationProblem p =
      ops::make_conditional_relaxation_problem(op, logits, ops::tau_value(op, tau), categorical);
  at::Tensor b = at::empty_like(p.logits);
  at::Tensor soft = at::empty_like(p.logits);
  at::Tensor soft_cond = at::empty_like(p.logits);
  const bool empty = p.logits.numel() == 0;
  const uint64_t seed = seeded ? static_cast<uint64_t>(seeded->first)
                               : (empty ? 0 : draw_seed(generator));
  const uint64_t offset = seeded ? static_cast<uint64_t>(seeded->second) : 0;
  if (!empty) {
    ConditionalRelaxationArgs args = make_args(p, seed, offset);
    args.b = b.mutable_data_ptr();
    args.soft = soft.mutable_data_ptr();
    args.soft_cond = soft_cond.mutable_data_ptr();
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, b.scalar_type(),
                                    "conditional_relaxation_cpu", [&] {
      const Isa isa = active_isa();
      run_parallel(p, args,
                   categorical ? GRADEXT_SELECT_ISA(isa, categorical_conditional_rows, scalar_t)
                               : GRADEXT_SELECT_ISA(isa, bernoulli_conditional_tiles, scalar_t));
    });
  }
  return {b, soft, soft_cond, ops::make_cpu_rng_state(seed, offset)};
}

Outputs sample_op(const at::Tensor& logits, const at::Tensor& tau, bool categorical,
                  std::optional<at::Generator> generator) {
  return forward("conditional_relaxation", logits, tau, categorical, generator, std::nullopt);
}

Outputs seeded_op(const at::Tensor& logits, const at::Tensor& tau, bool categorical,
                  int64_t seed, int64_t offset) {
  return forward("_conditional_relaxation_seeded", logits, tau, categorical, std::nullopt,
                 std::make_pair(seed, offset));
}

std::pair<uint64_t, uint64_t> read_rng_state(const at::Tensor& rng_state, const at::Tensor& like,
                                             const char* op) {
  ops::check_rng_state(rng_state, like.device(), op);
  const int64_t* state = rng_state.const_data_ptr<int64_t>();
  return {static_cast<uint64_t>(state[0]), static_cast<uint64_t>(state[1])};
}

std::tuple<at::Tensor, at::Tensor> noise_op(const at::Tensor& logits, const at::Tensor& rng_state,
                                            bool categorical) {
  const char* op = "_conditional_relaxation_noise";
  // The noise does not depend on tau: 1.
  const ConditionalRelaxationProblem p =
      ops::make_conditional_relaxation_problem(op, logits, 1.0, categorical);
  const auto [seed, offset] = read_rng_state(rng_state, logits, op);
  const auto options = p.logits.options().dtype(ops::noise_dtype(p.logits.scalar_type()));
  at::Tensor noise = at::empty(p.logits.sizes(), options);
  at::Tensor cond_noise = at::empty(p.logits.sizes(), options);
  if (p.logits.numel() == 0) return {noise, cond_noise};
  ConditionalRelaxationArgs args = make_args(p, seed, offset);
  args.noise = noise.mutable_data_ptr();
  args.cond_noise = cond_noise.mutable_data_ptr();
  // Both layouts are flat over the elements: one tile loop whatever the rows.
  ConditionalRelaxationProblem flat = p;
  flat.categorical = false;
  flat.categories = p.logits.numel();
  flat.rows = 1;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.logits.scalar_type(),
                                  "conditional_relaxation_noise_cpu", [&] {
    const Isa isa = active_isa();
    run_parallel(flat, args,
                 categorical ? GRADEXT_SELECT_ISA(isa, categorical_noise_tiles, scalar_t)
                             : GRADEXT_SELECT_ISA(isa, bernoulli_noise_tiles, scalar_t));
  });
  return {noise, cond_noise};
}

at::Tensor backward_op(const std::optional<at::Tensor>& grad_soft,
                       const std::optional<at::Tensor>& grad_soft_cond, const at::Tensor& logits,
                       const at::Tensor& tau, const at::Tensor& rng_state, bool categorical) {
  const char* op = "_conditional_relaxation_backward";
  const ConditionalRelaxationProblem p =
      ops::make_conditional_relaxation_problem(op, logits, ops::tau_value(op, tau), categorical);
  const ops::ConditionalRelaxationGrads grads =
      ops::check_conditional_relaxation_grads(p, grad_soft, grad_soft_cond);
  const auto [seed, offset] = read_rng_state(rng_state, logits, op);
  at::Tensor grad_logits = at::empty_like(p.logits);
  if (p.logits.numel() == 0) return grad_logits;
  ConditionalRelaxationArgs args = make_args(p, seed, offset);
  args.grad_soft = grads.soft.defined() ? grads.soft.const_data_ptr() : nullptr;
  args.grad_soft_cond = grads.soft_cond.defined() ? grads.soft_cond.const_data_ptr() : nullptr;
  args.grad_logits = grad_logits.mutable_data_ptr();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.logits.scalar_type(),
                                  "conditional_relaxation_backward_cpu", [&] {
    const Isa isa = active_isa();
    run_parallel(
        p, args,
        categorical ? GRADEXT_SELECT_ISA(isa, categorical_conditional_backward_rows, scalar_t)
                    : GRADEXT_SELECT_ISA(isa, bernoulli_conditional_backward_tiles, scalar_t));
  });
  return grad_logits;
}

std::tuple<at::Tensor, at::Tensor> jvp_op(const at::Tensor& tangent, const at::Tensor& logits,
                                          const at::Tensor& tau, const at::Tensor& rng_state,
                                          bool categorical) {
  const char* op = "_conditional_relaxation_jvp";
  const ConditionalRelaxationProblem p =
      ops::make_conditional_relaxation_problem(op, logits, ops::tau_value(op, tau), categorical);
  const at::Tensor v = ops::check_conditional_relaxation_tangent(p, tangent);
  const auto [seed, offset] = read_rng_state(rng_state, logits, op);
  at::Tensor soft = at::empty_like(p.logits);
  at::Tensor soft_cond = at::empty_like(p.logits);
  if (p.logits.numel() == 0) return {soft, soft_cond};
  ConditionalRelaxationArgs args = make_args(p, seed, offset);
  args.tangent = v.const_data_ptr();
  args.soft = soft.mutable_data_ptr();
  args.soft_cond = soft_cond.mutable_data_ptr();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.logits.scalar_type(),
                                  "conditional_relaxation_jvp_cpu", [&] {
    const Isa isa = active_isa();
    run_parallel(p, args,
                 categorical ? GRADEXT_SELECT_ISA(isa, categorical_conditional_jvp_rows, scalar_t)
                             : GRADEXT_SELECT_ISA(isa, bernoulli_conditional_jvp_tiles, scalar_t));
  });
  return {soft, soft_cond};
}

}  // namespace
}  // namespace gradext::cpu

TORCH_LIBRARY_IMPL(gradext, CPU, m) {
  using namespace gradext::cpu;
  m.impl("conditional_relaxation", &sample_op);
  m.impl("_conditional_relaxation_seeded", &seeded_op);
  m.impl("_conditional_relaxation_noise", &noise_op);
  m.impl("_conditional_relaxation_backward", &backward_op);
  m.impl("_conditional_relaxation_jvp", &jvp_op);
}

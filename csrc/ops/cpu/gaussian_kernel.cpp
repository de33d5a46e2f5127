// CPU implementation of the Gaussian ops (gaussian_rsample and normal_rsample, each with its
// seeded, replay and backward twins): seeding from the CPU generator, the per-ISA kernels,
// at::parallel_for over tiles, and the dispatcher registration.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <torch/library.h>

#include <algorithm>
#include <string>

#include "common/gaussian_spread.h"
#include "ops/cpu/cpu_generator.h"
#include "ops/cpu/cpu_isa.h"
#include "ops/cpu/gaussian_cpu_args.h"
#include "ops/gaussian.h"

#define GRADEXT_PER_ISA_BODY "ops/cpu/gaussian_cpu_impl.h"
#include "ops/cpu/per_isa.h"

namespace gradext::cpu {
namespace {

int64_t num_tiles(int64_t elements) { return (elements + kGaussianTile - 1) / kGaussianTile; }

// Tiles of S per parallel task: each tile costs num_samples tiles of noise, and below ~4k
// noise values (about 35 microseconds here, several times what waking a thread costs) one
// thread does all the work.
int64_t grain_tiles(int64_t num_samples) {
  return std::max<int64_t>(1, 4 * 1024 / (kGaussianTile * std::max<int64_t>(1, num_samples)));
}

template <typename P>
at::Tensor gaussian_forward_cpu(const ops::GaussianForwardProblem& p, uint64_t seed,
                                uint64_t offset) {
  at::Tensor z =
      at::empty(p.out_shape, p.mean.options().memory_format(at::MemoryFormat::Contiguous));
  if (z.numel() == 0) return z;
  GaussianForwardArgs args{p.mean.const_data_ptr(), p.spread.const_data_ptr(),
                           z.mutable_data_ptr(), p.layout, p.sample_numel, z.numel(),
                           PhiloxStream::make(seed, offset)};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, z.scalar_type(),
                                  "gaussian_forward_cpu", [&] {
    const GaussianForwardTiles tiles =
        GRADEXT_SELECT_ISA(active_isa(), gaussian_forward_tiles, scalar_t, typename P::Spread);
    at::parallel_for(0, num_tiles(args.sample_numel), grain_tiles(p.num_samples),
                     [&](int64_t begin, int64_t end) { tiles(args, begin, end); });
  });
  return z;
}

// The four ops of one parametrization (ops/gaussian.h), registered below for each.
template <typename P>
struct GaussianCpuOps {
  static std::tuple<at::Tensor, at::Tensor> sample(const at::Tensor& mean,
                                                   const at::Tensor& spread,
                                                   std::optional<int64_t> num_samples,
                                                   std::optional<at::Generator> generator) {
    const ops::GaussianForwardProblem p =
        ops::make_gaussian_forward_problem(P::names, mean, spread, num_samples);
    const uint64_t seed = c10::multiply_integers(p.out_shape) > 0 ? draw_seed(generator) : 0;
    return {gaussian_forward_cpu<P>(p, seed, 0), ops::make_cpu_rng_state(seed, 0)};
  }

  static std::tuple<at::Tensor, at::Tensor> seeded(const at::Tensor& mean,
                                                   const at::Tensor& spread,
                                                   std::optional<int64_t> num_samples,
                                                   int64_t seed, int64_t offset) {
    const ops::GaussianForwardProblem p =
        ops::make_gaussian_forward_problem(P::names, mean, spread, num_samples);
    return {gaussian_forward_cpu<P>(p, static_cast<uint64_t>(seed), static_cast<uint64_t>(offset)),
            ops::make_cpu_rng_state(seed, offset)};
  }

  static std::tuple<at::Tensor, at::Tensor> replay(const at::Tensor& mean,
                                                   const at::Tensor& spread,
                                                   std::optional<int64_t> num_samples,
                                                   const at::Tensor& rng_state) {
    const std::string op = std::string("_") + P::names.op + "_replay";
    ops::check_rng_state(rng_state, mean.device(), op.c_str());
    const int64_t* state = rng_state.const_data_ptr<int64_t>();
    return seeded(mean, spread, num_samples, state[0], state[1]);
  }

  static std::tuple<at::Tensor, at::Tensor> backward(const at::Tensor& grad,
                                                     const at::Tensor& spread,
                                                     const at::Tensor& rng_state,
                                                     at::IntArrayRef mean_size,
                                                     bool has_sample_dim, bool need_grad_mean) {
    const ops::GaussianBackwardProblem p = ops::make_gaussian_backward_problem(
        P::names, grad, spread, rng_state, mean_size, has_sample_dim);
    at::Tensor grad_mean = ops::empty_grad_mean(p, need_grad_mean);
    at::Tensor grad_spread = at::empty(p.sample_shape, p.grad.options());
    if (p.sample_numel > 0) {
      if (p.num_samples == 0) {
        grad_mean.zero_();
        grad_spread.zero_();
      } else {
        const int64_t* state = rng_state.const_data_ptr<int64_t>();
        GaussianBackwardArgs args{p.grad.const_data_ptr(), p.spread.const_data_ptr(),
                                  need_grad_mean ? grad_mean.mutable_data_ptr() : nullptr,
                                  grad_spread.mutable_data_ptr(),
                                  p.layout, p.sample_numel, p.num_samples,
                                  PhiloxStream::make(static_cast<uint64_t>(state[0]),
                                                     static_cast<uint64_t>(state[1]))};
        AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad.scalar_type(),
                                        "gaussian_backward_cpu", [&] {
          const GaussianBackwardTiles tiles = GRADEXT_SELECT_ISA(
              active_isa(), gaussian_backward_tiles, scalar_t, typename P::Spread);
          at::parallel_for(0, num_tiles(args.sample_numel), grain_tiles(args.num_samples),
                           [&](int64_t begin, int64_t end) { tiles(args, begin, end); });
        });
      }
    }
    return ops::reduce_gaussian_grads(grad_mean, grad_spread, mean_size, spread.sizes(),
                                      need_grad_mean);
  }
};

}  // namespace
}  // namespace gradext::cpu

TORCH_LIBRARY_IMPL(gradext, CPU, m) {
  using gradext::cpu::GaussianCpuOps;
  using LogVar = GaussianCpuOps<gradext::ops::LogVarParametrization>;
  using Scale = GaussianCpuOps<gradext::ops::ScaleParametrization>;
  m.impl("gaussian_rsample", &LogVar::sample);
  m.impl("_gaussian_rsample_seeded", &LogVar::seeded);
  m.impl("_gaussian_rsample_replay", &LogVar::replay);
  m.impl("_gaussian_rsample_backward", &LogVar::backward);
  m.impl("normal_rsample", &Scale::sample);
  m.impl("_normal_rsample_seeded", &Scale::seeded);
  m.impl("_normal_rsample_replay", &Scale::replay);
  m.impl("_normal_rsample_backward", &Scale::backward);
}

// CPU implementation of the gaussian_rsample ops: seeding from the CPU generator, the
// per-ISA kernels, at::parallel_for over tiles, and the dispatcher registration.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <torch/library.h>

#include <algorithm>
#include <mutex>

#if defined(__x86_64__)
#include <immintrin.h>  // declares every ISA's intrinsics; each is usable under its target
#endif

#include "common/layout2d.h"
#include "common/philox.h"
#include "common/random_transforms.h"
#include "common/scalar_math.h"
#include "ops/cpu/cpu_isa.h"
#include "ops/cpu/gaussian_rsample_cpu_args.h"
#include "ops/gaussian_rsample.h"

#define GRADEXT_CPU_INLINE GRADEXT_INLINE

// One copy of the kernels per instruction set. Only always_inline helpers and the kernels
// themselves are compiled under each target; ATen and the standard library were included above
// with the default target, so no AVX code can leak into functions shared with the rest of the
// process.
#define GRADEXT_CPU_ISA_LEVEL 0
namespace gradext::cpu::isa_default {
#include "ops/cpu/gaussian_rsample_cpu_impl.h"
}  // namespace gradext::cpu::isa_default
#undef GRADEXT_CPU_ISA_LEVEL

#if defined(__x86_64__) && defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define GRADEXT_CPU_ISA_LEVEL 1
namespace gradext::cpu::isa_avx2 {
#include "ops/cpu/gaussian_rsample_cpu_impl.h"
}  // namespace gradext::cpu::isa_avx2
#undef GRADEXT_CPU_ISA_LEVEL
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma,avx512f,avx512dq,avx512vl,avx512bw")
#define GRADEXT_CPU_ISA_LEVEL 2
namespace gradext::cpu::isa_avx512 {
#include "ops/cpu/gaussian_rsample_cpu_impl.h"
}  // namespace gradext::cpu::isa_avx512
#undef GRADEXT_CPU_ISA_LEVEL
#pragma GCC pop_options
#define GRADEXT_HAS_X86_VARIANTS 1
#endif

namespace gradext::cpu {
namespace {

template <typename scalar_t>
GaussianForwardTiles forward_tiles_for(Isa isa) {
#if defined(GRADEXT_HAS_X86_VARIANTS)
  if (isa == Isa::kAvx512) return &isa_avx512::gaussian_forward_tiles<scalar_t>;
  if (isa == Isa::kAvx2) return &isa_avx2::gaussian_forward_tiles<scalar_t>;
#endif
  return &isa_default::gaussian_forward_tiles<scalar_t>;
}

template <typename scalar_t>
GaussianBackwardTiles backward_tiles_for(Isa isa) {
#if defined(GRADEXT_HAS_X86_VARIANTS)
  if (isa == Isa::kAvx512) return &isa_avx512::gaussian_backward_tiles<scalar_t>;
  if (isa == Isa::kAvx2) return &isa_avx2::gaussian_backward_tiles<scalar_t>;
#endif
  return &isa_default::gaussian_backward_tiles<scalar_t>;
}

int64_t num_tiles(int64_t elements) { return (elements + kGaussianTile - 1) / kGaussianTile; }

// Tiles of S per parallel task: each tile costs num_samples tiles of noise, and below ~32k
// noise values one thread does all the work.
int64_t grain_tiles(int64_t num_samples) {
  return std::max<int64_t>(1, 32 * 1024 / (kGaussianTile * std::max<int64_t>(1, num_samples)));
}

at::Tensor gaussian_forward_cpu(const ops::GaussianForwardProblem& p, uint64_t seed,
                                uint64_t offset) {
  at::Tensor z = at::empty(p.out_shape, p.mu.options().memory_format(at::MemoryFormat::Contiguous));
  if (z.numel() == 0) return z;
  GaussianForwardArgs args{p.mu.const_data_ptr(), p.logvar.const_data_ptr(), z.mutable_data_ptr(),
                           p.layout, p.sample_numel, z.numel(),
                           PhiloxStream::make(seed, offset)};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, z.scalar_type(),
                                  "gaussian_rsample_forward_cpu", [&] {
    const GaussianForwardTiles tiles = forward_tiles_for<scalar_t>(active_isa());
    at::parallel_for(0, num_tiles(args.sample_numel), grain_tiles(p.num_samples),
                     [&](int64_t begin, int64_t end) { tiles(args, begin, end); });
  });
  return z;
}

std::tuple<at::Tensor, at::Tensor> gaussian_rsample_cpu(const at::Tensor& mu,
                                                        const at::Tensor& logvar,
                                                        std::optional<int64_t> num_samples,
                                                        std::optional<at::Generator> generator) {
  const ops::GaussianForwardProblem p =
      ops::make_gaussian_forward_problem(mu, logvar, num_samples);
  uint64_t seed = 0;
  if (c10::multiply_integers(p.out_shape) > 0) {
    auto* gen = at::get_generator_or_default<at::CPUGeneratorImpl>(
        generator, at::detail::getDefaultCPUGenerator());
    std::lock_guard<std::mutex> lock(gen->mutex_);
    seed = gen->random64();  // a fresh 64-bit key per call; offset 0 on the CPU
  }
  return {gaussian_forward_cpu(p, seed, 0), ops::make_rng_state(seed, 0, mu.device())};
}

std::tuple<at::Tensor, at::Tensor> gaussian_rsample_seeded_cpu(const at::Tensor& mu,
                                                               const at::Tensor& logvar,
                                                               std::optional<int64_t> num_samples,
                                                               int64_t seed, int64_t offset) {
  const ops::GaussianForwardProblem p =
      ops::make_gaussian_forward_problem(mu, logvar, num_samples);
  return {gaussian_forward_cpu(p, static_cast<uint64_t>(seed), static_cast<uint64_t>(offset)),
          ops::make_rng_state(seed, offset, mu.device())};
}

std::tuple<at::Tensor, at::Tensor> gaussian_rsample_backward_cpu(const at::Tensor& grad,
                                                                 const at::Tensor& logvar,
                                                                 const at::Tensor& rng_state,
                                                                 at::IntArrayRef mu_size,
                                                                 bool has_sample_dim) {
  const ops::GaussianBackwardProblem p =
      ops::make_gaussian_backward_problem(grad, logvar, rng_state, mu_size, has_sample_dim);
  at::Tensor grad_mu = at::empty(p.sample_shape, p.grad.options());
  at::Tensor grad_logvar = at::empty(p.sample_shape, p.grad.options());
  if (p.sample_numel > 0) {
    if (p.num_samples == 0) {
      grad_mu.zero_();
      grad_logvar.zero_();
    } else {
      const int64_t* state = rng_state.const_data_ptr<int64_t>();
      GaussianBackwardArgs args{p.grad.const_data_ptr(), p.logvar.const_data_ptr(),
                                grad_mu.mutable_data_ptr(), grad_logvar.mutable_data_ptr(),
                                p.layout, p.sample_numel, p.num_samples,
                                PhiloxStream::make(static_cast<uint64_t>(state[0]),
                                                   static_cast<uint64_t>(state[1]))};
      AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad.scalar_type(),
                                      "gaussian_rsample_backward_cpu", [&] {
        const GaussianBackwardTiles tiles = backward_tiles_for<scalar_t>(active_isa());
        at::parallel_for(0, num_tiles(args.sample_numel), grain_tiles(args.num_samples),
                         [&](int64_t begin, int64_t end) { tiles(args, begin, end); });
      });
    }
  }
  return ops::reduce_gaussian_grads(grad_mu, grad_logvar, mu_size, logvar.sizes());
}

}  // namespace
}  // namespace gradext::cpu

TORCH_LIBRARY_IMPL(gradext, CPU, m) {
  m.impl("gaussian_rsample", &gradext::cpu::gaussian_rsample_cpu);
  m.impl("_gaussian_rsample_seeded", &gradext::cpu::gaussian_rsample_seeded_cpu);
  m.impl("_gaussian_rsample_backward", &gradext::cpu::gaussian_rsample_backward_cpu);
}

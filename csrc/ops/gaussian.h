// The Gaussian family: z = mean + sd * eps, eps ~ N(0, I), with a fused backward that recomputes
// eps from (seed, offset) instead of saving it, in two parametrizations of the spread:
//   gaussian_rsample(mu, logvar)  sd = exp(logvar / 2)  (the VAE encoder's output)
//   normal_rsample(loc, scale)    sd = scale            (torch.distributions.Normal's)
// Host-side pieces shared by the CPU and CUDA launchers: argument checks, broadcasting and the
// problem description the kernels consume.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "common/gaussian_spread.h"
#include "common/layout2d.h"

namespace gradext::ops {

// The names a parametrization's ops use: the public op ("_<op>_seeded", "_<op>_replay" and
// "_<op>_backward" are its twins) and its two parameters, as the messages name them.
struct GaussianNames {
  const char* op;
  const char* mean;
  const char* spread;
};

// One parametrization: its names and its Spread (common/gaussian_spread.h). The CPU and CUDA
// launchers are templates over these, registered once per parametrization.
struct LogVarParametrization {
  using Spread = LogVarSpread;
  static constexpr GaussianNames names{"gaussian_rsample", "mu", "logvar"};
};
struct ScaleParametrization {
  using Spread = ScaleSpread;
  static constexpr GaussianNames names{"normal_rsample", "loc", "scale"};
};

// Forward problem. Layout input 0 is the mean, input 1 the spread, both over the broadcast
// sample shape S; the output is contiguous (K, *S) (or S), element k * numel(S) + s.
struct GaussianForwardProblem {
  at::Tensor mean;    // in the result dtype
  at::Tensor spread;  // in the result dtype
  Layout2D layout;
  std::vector<int64_t> out_shape;
  int64_t num_samples = 1;   // K; 1 when no sample dimension was asked for
  int64_t sample_numel = 0;  // numel(S)
};

GaussianForwardProblem make_gaussian_forward_problem(const GaussianNames& names,
                                                     const at::Tensor& mean,
                                                     const at::Tensor& spread,
                                                     std::optional<int64_t> num_samples);

// Backward problem. Layout input 0 is the spread over S; grad is contiguous (K, *S).
struct GaussianBackwardProblem {
  at::Tensor grad;    // contiguous, in the result dtype
  at::Tensor spread;  // in the result dtype
  Layout2D layout;
  std::vector<int64_t> sample_shape;  // S
  int64_t num_samples = 1;
  int64_t sample_numel = 0;
};

GaussianBackwardProblem make_gaussian_backward_problem(const GaussianNames& names,
                                                       const at::Tensor& grad,
                                                       const at::Tensor& spread,
                                                       const at::Tensor& rng_state,
                                                       at::IntArrayRef mean_size,
                                                       bool has_sample_dim);

// Checks that rng_state is a forward's (seed, offset) pair: int64, 2 elements, on `device`.
void check_rng_state(const at::Tensor& rng_state, const at::Device& device, const char* op);

// The per-element gradient of the mean (shape S), or an empty tensor when it is not wanted.
at::Tensor empty_grad_mean(const GaussianBackwardProblem& p, bool need_grad_mean);

// Reduces the per-element gradients (shape S) to each input's own shape (the mean's only when
// it was wanted; otherwise it stays empty).
std::tuple<at::Tensor, at::Tensor> reduce_gaussian_grads(const at::Tensor& grad_mean_full,
                                                         const at::Tensor& grad_spread_full,
                                                         at::IntArrayRef mean_size,
                                                         at::IntArrayRef spread_size,
                                                         bool need_grad_mean);

// The (seed, offset) pair a CPU forward call used, as the int64 tensor saved for backward (the
// CUDA kernels write theirs on the device, where the offset is known only at run time).
at::Tensor make_cpu_rng_state(uint64_t seed, uint64_t offset);

}  // namespace gradext::ops

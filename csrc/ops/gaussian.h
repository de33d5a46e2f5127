// gaussian_rsample: z = mu + exp(logvar / 2) * eps, eps ~ N(0, I), with a fused backward that
// recomputes eps from (seed, offset) instead of saving it. Host-side pieces shared by the CPU and
// CUDA launchers: argument checks, broadcasting and the problem description the kernels consume.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "common/layout2d.h"

namespace gradext::ops {

// Forward problem. Layout input 0 is mu, input 1 is logvar, both over the broadcast sample
// shape S; the output is contiguous (K, *S) (or S), element k * numel(S) + s.
struct GaussianForwardProblem {
  at::Tensor mu;      // in the result dtype
  at::Tensor logvar;  // in the result dtype
  Layout2D layout;
  std::vector<int64_t> out_shape;
  int64_t num_samples = 1;   // K; 1 when no sample dimension was asked for
  int64_t sample_numel = 0;  // numel(S)
};

GaussianForwardProblem make_gaussian_forward_problem(const at::Tensor& mu,
                                                     const at::Tensor& logvar,
                                                     std::optional<int64_t> num_samples);

// Backward problem. Layout input 0 is logvar over S; grad is contiguous (K, *S).
struct GaussianBackwardProblem {
  at::Tensor grad;    // contiguous, in the result dtype
  at::Tensor logvar;  // in the result dtype
  Layout2D layout;
  std::vector<int64_t> sample_shape;  // S
  int64_t num_samples = 1;
  int64_t sample_numel = 0;
};

GaussianBackwardProblem make_gaussian_backward_problem(const at::Tensor& grad,
                                                       const at::Tensor& logvar,
                                                       const at::Tensor& rng_state,
                                                       at::IntArrayRef mu_size,
                                                       bool has_sample_dim);

// Checks that rng_state is a forward's (seed, offset) pair: int64, 2 elements, on `device`.
void check_rng_state(const at::Tensor& rng_state, const at::Device& device, const char* op);

// The per-element grad_mu of the backward (shape S), or an empty tensor when it is not wanted.
at::Tensor empty_grad_mu(const GaussianBackwardProblem& p, bool need_grad_mu);

// Reduces the per-element gradients (shape S) to each input's own shape (grad_mu only when it
// was wanted; otherwise it stays empty).
std::tuple<at::Tensor, at::Tensor> reduce_gaussian_grads(const at::Tensor& grad_mu_full,
                                                         const at::Tensor& grad_logvar_full,
                                                         at::IntArrayRef mu_size,
                                                         at::IntArrayRef logvar_size,
                                                         bool need_grad_mu);

// The (seed, offset) pair a CPU forward call used, as the int64 tensor saved for backward (the
// CUDA kernels write theirs on the device, where the offset is known only at run time).
at::Tensor make_cpu_rng_state(uint64_t seed, uint64_t offset);

}  // namespace gradext::ops

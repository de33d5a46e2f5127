// dirichlet_rsample: x ~ Dirichlet(concentration) along the last dimension, as normalized Gamma
// samples (x_i = g_i / sum_j g_j, g_i ~ Gamma(alpha_i, 1), each from its own Philox sub-stream,
// normalized in log space), with the implicit reparameterization gradient in a fused row-wise
// backward that reads the saved sample and log-Gammas. Host-side pieces shared by the CPU and
// CUDA launchers: argument checks, broadcasting and the problem descriptions.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "common/layout2d.h"

namespace gradext::ops {

// Forward problem. The output is contiguous (K, *S) (or S), S = concentration's shape, its last
// dimension the simplex of `categories` entries; layout input 0 is concentration over S.
struct DirichletForwardProblem {
  at::Tensor concentration;  // in its own dtype
  Layout2D layout;
  std::vector<int64_t> out_shape;
  int64_t sample_numel = 0;  // numel(S)
  int64_t categories = 0;    // S's last dimension
  at::ScalarType log_gamma_dtype;  // the math type: float32 for the float types, else float64
};

DirichletForwardProblem make_dirichlet_forward_problem(const at::Tensor& concentration,
                                                       std::optional<int64_t> num_samples);

// Backward problem: rows of `categories` entries over x's shape; concentration broadcast to x's
// trailing dimensions S (through the layout); grad, x and log_gamma contiguous.
struct DirichletBackwardProblem {
  at::Tensor grad;  // in x's dtype
  at::Tensor x;
  at::Tensor log_gamma;
  at::Tensor concentration;  // in x's dtype
  Layout2D layout;
  int64_t sample_numel = 0;
  int64_t categories = 0;
};

DirichletBackwardProblem make_dirichlet_backward_problem(const at::Tensor& grad,
                                                         const at::Tensor& x,
                                                         const at::Tensor& log_gamma,
                                                         const at::Tensor& concentration);

// The ValueError of a concentration that is not positive and finite, found by a CPU kernel at
// flat position `position` of the concentration's broadcast shape.
[[noreturn]] void throw_invalid_dirichlet_concentration(double value, int64_t position);

}  // namespace gradext::ops

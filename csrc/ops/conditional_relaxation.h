// Host-side pieces of conditional_relaxation (the REBAR/RELAX primitive): argument checks and
// the problem description shared by the CPU and CUDA launchers.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>

namespace gradext::ops {

// logits viewed as contiguous rows x categories: the categorical case works along the last
// dim; the Bernoulli case is elementwise (one row of numel elements).
struct ConditionalRelaxationProblem {
  at::Tensor logits;  // contiguous
  int64_t rows = 0;
  int64_t categories = 0;
  double inv_tau = 1.0;
  bool categorical = false;
};

// `tau` is the value of the ops' tau tensor (ops/relaxed.h: tau_value).
ConditionalRelaxationProblem make_conditional_relaxation_problem(const char* op,
                                                                 const at::Tensor& logits,
                                                                 double tau, bool categorical);

// The fused backward's incoming gradients, each absent or of the logits' shape and dtype, made
// contiguous (an absent one stays undefined: its term is zero).
struct ConditionalRelaxationGrads {
  at::Tensor soft;
  at::Tensor soft_cond;
};

ConditionalRelaxationGrads check_conditional_relaxation_grads(
    const ConditionalRelaxationProblem& p, const std::optional<at::Tensor>& grad_soft,
    const std::optional<at::Tensor>& grad_soft_cond);

// The Jacobian-vector product's tangent: the logits' shape and dtype, made contiguous.
at::Tensor check_conditional_relaxation_tangent(const ConditionalRelaxationProblem& p,
                                                const at::Tensor& tangent);

// The dtype the noise is computed in: float for the half types, else the logits' own.
at::ScalarType noise_dtype(at::ScalarType logits_dtype);

}  // namespace gradext::ops

#include "ops/conditional_relaxation.h"

#include <ATen/ATen.h>
#include <torch/library.h>

#include <cmath>

#include "ops/row_length.h"

namespace gradext::ops {

ConditionalRelaxationProblem make_conditional_relaxation_problem(const char* op,
                                                                 const at::Tensor& logits,
                                                                 double tau, bool categorical) {
  TORCH_CHECK_TYPE(at::isFloatingType(logits.scalar_type()), op,
                   ": logits must be a floating-point tensor, got dtype ", logits.scalar_type());
  TORCH_CHECK_VALUE(std::isfinite(tau) && tau > 0, op, ": tau must be a finite number > 0, got ",
                    tau);
  ConditionalRelaxationProblem p;
  p.categorical = categorical;
  if (categorical) {
    TORCH_CHECK_VALUE(logits.dim() >= 1, op, ": categorical logits must have at least one "
                      "dimension (the categories)");
    p.categories = logits.size(-1);
    // Before contiguous(): an expanded row of 2^31 categories is refused without a copy.
    check_row_length(op, "logits", p.categories);
  } else {
    p.categories = logits.numel();
  }
  p.logits = logits.contiguous();
  p.rows = p.categories == 0 ? 0 : logits.numel() / p.categories;
  p.inv_tau = 1.0 / tau;
  return p;
}

ConditionalRelaxationGrads check_conditional_relaxation_grads(
    const ConditionalRelaxationProblem& p, const std::optional<at::Tensor>& grad_soft,
    const std::optional<at::Tensor>& grad_soft_cond) {
  const char* op = "_conditional_relaxation_backward";
  ConditionalRelaxationGrads grads;
  auto check = [&](const std::optional<at::Tensor>& grad, const char* name) -> at::Tensor {
    if (!grad.has_value() || !grad->defined()) return at::Tensor();
    TORCH_CHECK(grad->sizes().equals(p.logits.sizes()), op, ": ", name, " of shape ",
                grad->sizes(), " does not match logits of shape ", p.logits.sizes());
    TORCH_CHECK(grad->device() == p.logits.device(), op, ": ", name, " is on ", grad->device(),
                " but logits are on ", p.logits.device());
    TORCH_CHECK_TYPE(grad->scalar_type() == p.logits.scalar_type(), op, ": ", name, " (",
                     grad->scalar_type(), ") and logits (", p.logits.scalar_type(),
                     ") must share one dtype");
    return grad->contiguous();
  };
  grads.soft = check(grad_soft, "grad_soft");
  grads.soft_cond = check(grad_soft_cond, "grad_soft_cond");
  return grads;
}

at::Tensor check_conditional_relaxation_tangent(const ConditionalRelaxationProblem& p,
                                                const at::Tensor& tangent) {
  const char* op = "_conditional_relaxation_jvp";
  TORCH_CHECK(tangent.sizes().equals(p.logits.sizes()), op, ": tangent of shape ",
              tangent.sizes(), " does not match logits of shape ", p.logits.sizes());
  TORCH_CHECK(tangent.device() == p.logits.device(), op, ": tangent is on ", tangent.device(),
              " but logits are on ", p.logits.device());
  TORCH_CHECK_TYPE(tangent.scalar_type() == p.logits.scalar_type(), op, ": tangent (",
                   tangent.scalar_type(), ") and logits (", p.logits.scalar_type(),
                   ") must share one dtype");
  return tangent.contiguous();
}

at::ScalarType noise_dtype(at::ScalarType logits_dtype) {
  return logits_dtype == at::kDouble ? at::kDouble : at::kFloat;
}

}  // namespace gradext::ops

TORCH_LIBRARY_FRAGMENT(gradext, m) {
  // The fake kernels and autograd formulas of these ops live in this Python module.
  m.set_python_module("gradext.conditional_relaxation");
  // tau is a one-element float tensor on the CPU (ops/relaxed.h: tau_value). Bernoulli logits
  // (categorical=false, elementwise, logistic noise) or categorical logits along the last dim
  // (Gumbel noise). Returns (b, soft, soft_cond, rng_state): the discrete sample H(z) of
  // z = logits + noise (0/1, or the one-hot of argmax z), soft = sigmoid(z / tau) or
  // softmax(z / tau), soft_cond the same relaxation of z_tilde ~ p(z | b) from noise of its own
  // (csrc/common/conditional_relaxation.h), and the int64 (seed, offset) both noises came from,
  // all that the backward needs to draw them again.
  m.def(
      "conditional_relaxation(Tensor logits, Tensor tau, bool categorical, *, "
      "Generator? generator=None) -> (Tensor, Tensor, Tensor, Tensor)",
      {at::Tag::nondeterministic_seeded});
  m.def(
      "_conditional_relaxation_seeded(Tensor logits, Tensor tau, bool categorical, int seed, "
      "int offset) -> (Tensor, Tensor, Tensor, Tensor)");
  // The noise of a forward, drawn again from its rng_state on the device: (noise, cond_noise)
  // in the math dtype (float for the half types): logistic noise L (Bernoulli) or Gumbel noise
  // g (categorical) for z, and the same transform of the conditional words (the kernels use
  // those words' odds e^L_v and exponentials e^-g_tilde: csrc/common/conditional_relaxation.h).
  // Its uses: the derivative of the fused backward (double backward), and tests.
  m.def(
      "_conditional_relaxation_noise(Tensor logits, Tensor rng_state, bool categorical) "
      "-> (Tensor, Tensor)");
  // d logits of grad_soft . soft + grad_soft_cond . soft_cond, the noise drawn again from
  // rng_state; an absent gradient counts as zero.
  m.def(
      "_conditional_relaxation_backward(Tensor? grad_soft, Tensor? grad_soft_cond, "
      "Tensor logits, Tensor tau, Tensor rng_state, bool categorical) -> Tensor");
  // (d soft, d soft_cond) = the Jacobians of soft and soft_cond in the logits applied to a
  // tangent of the logits, the noise drawn again from rng_state: the fused backward's
  // derivative in its incoming gradients (double backward; what variance tuning of REBAR and
  // RELAX differentiates).
  m.def(
      "_conditional_relaxation_jvp(Tensor tangent, Tensor logits, Tensor tau, Tensor rng_state, "
      "bool categorical) -> (Tensor, Tensor)");
}

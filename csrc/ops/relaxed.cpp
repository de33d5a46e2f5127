#include "ops/relaxed.h"

#include <ATen/ATen.h>
#include <torch/library.h>

#include <cmath>

#include "ops/row_length.h"

namespace gradext::ops {
namespace {

void check_tau(const char* op, double tau) {
  TORCH_CHECK_VALUE(std::isfinite(tau) && tau > 0, op, ": tau must be a finite number > 0, got ",
                    tau);
}

}  // namespace

const char* relaxation_name(Relaxation r) {
  return r == Relaxation::kSoftmax ? "gumbel_softmax" : "gumbel_sigmoid";
}

double tau_value(Relaxation r, const at::Tensor& tau) {
  return tau_value(relaxation_name(r), tau);
}

double tau_value(const char* op, const at::Tensor& tau) {
  TORCH_CHECK_VALUE(tau.device().is_cpu() && tau.numel() == 1 &&
                        at::isFloatingType(tau.scalar_type()),
                    op, ": tau must be a one-element floating tensor on the CPU, ",
                    "got ", tau.scalar_type(), " of shape ", tau.sizes(), " on ", tau.device());
  // Through the pointer for the float64 the public functions pass: item() is a dispatched op.
  return tau.scalar_type() == at::kDouble && tau.is_contiguous() ? *tau.const_data_ptr<double>()
                                                                 : tau.item<double>();
}

RelaxedProblem make_relaxed_problem(Relaxation r, const at::Tensor& logits, double tau) {
  const char* op = relaxation_name(r);
  TORCH_CHECK_TYPE(at::isFloatingType(logits.scalar_type()), op,
                   ": logits must be a floating-point tensor, got dtype ", logits.scalar_type());
  check_tau(op, tau);
  RelaxedProblem p;
  p.categories = logits.dim() == 0 ? 1 : logits.size(-1);
  // Before contiguous(): an expanded row of 2^31 categories is refused without a copy.
  if (r == Relaxation::kSoftmax) check_row_length(op, "logits", p.categories);
  p.logits = logits.contiguous();
  p.rows = p.categories == 0 ? 0 : logits.numel() / p.categories;
  p.inv_tau = 1.0 / tau;
  return p;
}

void check_relaxed_backward(Relaxation r, const at::Tensor& grad, const at::Tensor& y_soft,
                            double tau) {
  const char* op = relaxation_name(r);
  check_tau(op, tau);
  if (r == Relaxation::kSoftmax && y_soft.dim() > 0) {
    check_row_length(op, "the soft sample", y_soft.size(-1));
  }
  TORCH_CHECK(grad.sizes().equals(y_soft.sizes()), op, ": grad of shape ", grad.sizes(),
              " does not match the soft sample of shape ", y_soft.sizes());
  TORCH_CHECK(grad.device() == y_soft.device(), op, ": grad is on ", grad.device(),
              " but the soft sample is on ", y_soft.device());
  TORCH_CHECK_TYPE(at::isFloatingType(grad.scalar_type()) && grad.scalar_type() == y_soft.scalar_type(),
                   op, ": grad (", grad.scalar_type(), ") and the soft sample (",
                   y_soft.scalar_type(), ") must share one floating dtype");
}

}  // namespace gradext::ops

TORCH_LIBRARY_FRAGMENT(gradext, m) {
  // The fake kernels and autograd formulas of these ops live in this Python module.
  m.set_python_module("gradext.relaxed");
  // tau is a one-element float tensor on the CPU (ops/relaxed.h: tau_value).
  // y = softmax((logits + g) / tau) along the last dim, g ~ Gumbel(0, 1). Returns (y, y_soft):
  // with hard=True, y is the exact one-hot of argmax(logits + g) and y_soft the soft sample
  // (kept for the straight-through backward); with hard=False, y is the soft sample and y_soft
  // is empty.
  m.def(
      "gumbel_softmax(Tensor logits, Tensor tau, bool hard, *, Generator? generator=None) "
      "-> (Tensor, Tensor)",
      {at::Tag::nondeterministic_seeded});
  m.def(
      "_gumbel_softmax_seeded(Tensor logits, Tensor tau, bool hard, int seed, int offset) "
      "-> (Tensor, Tensor)");
  // d logits = y_soft * (grad - sum(grad * y_soft, -1)) / tau, one row pass.
  m.def("_gumbel_softmax_backward(Tensor grad, Tensor y_soft, Tensor tau) -> Tensor");
  // y = sigmoid((logits + L) / tau), L ~ Logistic(0, 1), elementwise; same outputs as above.
  m.def(
      "gumbel_sigmoid(Tensor logits, Tensor tau, bool hard, *, Generator? generator=None) "
      "-> (Tensor, Tensor)",
      {at::Tag::nondeterministic_seeded});
  m.def(
      "_gumbel_sigmoid_seeded(Tensor logits, Tensor tau, bool hard, int seed, int offset) "
      "-> (Tensor, Tensor)");
  // d logits = grad * y_soft * (1 - y_soft) / tau.
  m.def("_gumbel_sigmoid_backward(Tensor grad, Tensor y_soft, Tensor tau) -> Tensor");
}

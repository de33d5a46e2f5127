#include "ops/score_function.h"

#include <ATen/ATen.h>
#include <ATen/OpMathType.h>
#include <torch/library.h>

#include <cstdint>

#include "common/leave_one_out.h"

namespace gradext::ops {
namespace {

SampleAxisProblem view_samples(const char* op, const char* values_name, const at::Tensor& values,
                               int64_t dim) {
  TORCH_CHECK_TYPE(at::isFloatingType(values.scalar_type()), op, ": ", values_name,
                   " must be a floating-point tensor, got dtype ", values.scalar_type());
  TORCH_CHECK_INDEX(values.dim() > 0, op, ": ", values_name,
                    " must have at least one dimension (the samples)");
  TORCH_CHECK_INDEX(dim >= -values.dim() && dim < values.dim(), op, ": dim ", dim,
                    " is out of range for ", values_name, " with ", values.dim(), " dimensions");
  const int64_t d = dim < 0 ? dim + values.dim() : dim;
  SampleAxisProblem p;
  p.samples = values.size(d);
  TORCH_CHECK_VALUE(p.samples >= 2, op, ": needs K >= 2 samples along dim ", dim, " of ",
                    values_name, " (a leave-one-out baseline needs another sample), got K = ",
                    p.samples);
  TORCH_CHECK_VALUE(p.samples <= INT32_MAX, op, ": at most 2^31 - 1 samples along dim, got ",
                    p.samples);
  for (int64_t j = 0; j < values.dim(); ++j) {
    if (j < d) p.outer *= values.size(j);
    if (j > d) p.inner *= values.size(j);
    if (j != d) p.reduced_shape.push_back(values.size(j));
  }
  p.values = values.contiguous();
  return p;
}

}  // namespace

SampleAxisProblem make_sample_axis_problem(const char* op, const char* values_name,
                                           const at::Tensor& values, const char* other_name,
                                           const at::Tensor& other, int64_t dim) {
  TORCH_CHECK_TYPE(at::isFloatingType(other.scalar_type()), op, ": ", other_name,
                   " must be a floating-point tensor, got dtype ", other.scalar_type());
  TORCH_CHECK_VALUE(values.sizes().equals(other.sizes()), op, ": ", values_name, " of shape ",
                    values.sizes(), " and ", other_name, " of shape ", other.sizes(),
                    " must have the same shape");
  TORCH_CHECK(values.device() == other.device(), op, ": ", values_name, " is on ",
              values.device(), " but ", other_name, " is on ", other.device());
  return view_samples(op, values_name, values, dim);
}

SampleAxisProblem make_sample_axis_backward_problem(const char* op, const at::Tensor& grad,
                                                    const at::Tensor& values, int64_t dim) {
  SampleAxisProblem p = view_samples(op, "the saved samples", values, dim);
  TORCH_CHECK(grad.sizes().equals(p.reduced_shape), op, ": grad of shape ", grad.sizes(),
              " does not match the reduced shape ", at::IntArrayRef(p.reduced_shape));
  TORCH_CHECK(grad.device() == values.device(), op, ": grad is on ", grad.device(),
              " but the saved samples are on ", values.device());
  TORCH_CHECK_TYPE(grad.scalar_type() == values.scalar_type(), op, ": grad (",
                   grad.scalar_type(), ") and the saved samples (", values.scalar_type(),
                   ") must share one dtype");
  return p;
}

at::Tensor make_vimco_stats(const SampleAxisProblem& p) {
  return at::empty({kVimcoStatsRows, p.outer * p.inner},
                   p.values.options().dtype(at::toOpMathType(p.values.scalar_type())));
}

void check_vimco_stats(const at::Tensor& stats, const SampleAxisProblem& p) {
  const at::ScalarType math_type = at::toOpMathType(p.values.scalar_type());
  TORCH_CHECK(stats.dim() == 2 && stats.size(0) == kVimcoStatsRows &&
                  stats.size(1) == p.outer * p.inner && stats.is_contiguous(),
              "_vimco_backward: stats must be the contiguous [", kVimcoStatsRows, ", ",
              p.outer * p.inner, "] tensor vimco returned, got shape ", stats.sizes());
  TORCH_CHECK_TYPE(stats.scalar_type() == math_type, "_vimco_backward: stats must be ", math_type,
                   ", got ", stats.scalar_type());
  TORCH_CHECK(stats.device() == p.values.device(), "_vimco_backward: stats are on ",
              stats.device(), " but log_weights on ", p.values.device());
}

}  // namespace gradext::ops

TORCH_LIBRARY_FRAGMENT(gradext, m) {
  // The fake kernels and autograd formulas of these ops live in this Python module.
  m.set_python_module("gradext.score_function");
  // RLOO: returns mean_k f_k along dim. log_prob (same shape) only carries the graph: its
  // gradient is grad * (f_k - b_k) / K with b_k = (sum_j f_j - f_k) / (K - 1).
  m.def("score_function_loo(Tensor f, Tensor log_prob, int dim) -> Tensor");
  // d log_prob = grad * (f_k - mean_j f_j) / (K - 1) (the same quantity), in f's dtype.
  m.def("_score_function_loo_backward(Tensor grad, Tensor f, int dim) -> Tensor");
  // VIMCO: returns (L, stats), L = logsumexp(log_weights, dim) - log K, and the per-datapoint
  // top-two statistics saved for the one-pass backward (common/leave_one_out.h).
  m.def("vimco(Tensor log_weights, Tensor log_prob, int dim) -> (Tensor, Tensor)");
  // (d log_weights, d log_prob) = (grad * softmax(log_weights), grad * (L - L_{-k})), in
  // log_weights' dtype; an output whose mask entry is false comes back empty.
  m.def(
      "_vimco_backward(Tensor grad, Tensor log_weights, Tensor stats, int dim, "
      "bool[2] output_mask) -> (Tensor, Tensor)");
}

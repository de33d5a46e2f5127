#include "ops/categorical.h"

#include <ATen/ATen.h>
#include <torch/library.h>

#include "ops/row_length.h"

namespace gradext::ops {

CategoricalProblem make_categorical_problem(const at::Tensor& logits, int64_t num_samples) {
  constexpr const char* op = "categorical_sample";
  TORCH_CHECK_TYPE(at::isFloatingType(logits.scalar_type()), op,
                   ": logits must be a floating-point tensor, got dtype ", logits.scalar_type());
  TORCH_CHECK_VALUE(logits.dim() >= 1, op,
                    ": logits must have at least one dimension (the categories)");
  TORCH_CHECK_VALUE(logits.size(-1) >= 1, op, ": logits must have at least one category, got shape ",
                    logits.sizes());
  check_row_length(op, "logits", logits.size(-1));
  TORCH_CHECK_VALUE(num_samples >= 1, op, ": num_samples must be >= 1, got ", num_samples);
  CategoricalProblem p;
  p.logits = logits.contiguous();
  p.categories = logits.size(-1);
  p.rows = logits.numel() / p.categories;
  p.samples = num_samples;
  p.out_shape.push_back(num_samples);
  for (int64_t j = 0; j + 1 < logits.dim(); ++j) p.out_shape.push_back(logits.size(j));
  return p;
}

void check_categorical_backward(const at::Tensor& grad, const at::Tensor& logits,
                                const at::Tensor& index) {
  constexpr const char* op = "_categorical_sample_backward";
  TORCH_CHECK(index.dim() == logits.dim() && grad.sizes().equals(index.sizes()), op,
              ": grad of shape ", grad.sizes(), " and index of shape ", index.sizes(),
              " must both be (num_samples, *batch) for logits of shape ", logits.sizes());
  TORCH_CHECK(index.sizes().slice(1).equals(logits.sizes().slice(0, logits.dim() - 1)), op,
              ": index of shape ", index.sizes(), " does not match logits of shape ",
              logits.sizes());
  if (logits.dim() > 0) check_row_length(op, "logits", logits.size(-1));
  TORCH_CHECK_TYPE(index.scalar_type() == at::kLong, op, ": index must be int64, got ",
                   index.scalar_type());
  TORCH_CHECK_TYPE(grad.scalar_type() == logits.scalar_type(), op, ": grad (", grad.scalar_type(),
                   ") and logits (", logits.scalar_type(), ") must share one dtype");
  TORCH_CHECK(grad.device() == logits.device() && index.device() == logits.device(), op,
              ": grad, logits and index must be on one device");
}

}  // namespace gradext::ops

TORCH_LIBRARY_FRAGMENT(gradext, m) {
  // The fake kernels and autograd formulas of these ops live in this Python module.
  m.set_python_module("gradext.categorical");
  // index = argmax(logits + g) along the last dim for num_samples independent Gumbel draws g
  // (exact Categorical(softmax(logits)) samples), log_prob = log_softmax(logits) at index.
  // Values before indices, as torch.max and torch.topk return them (and as opcheck's autograd
  // test needs: it sums the outputs in order).
  m.def(
      "categorical_sample(Tensor logits, SymInt num_samples, *, Generator? generator=None) "
      "-> (Tensor log_prob, Tensor index)",
      {at::Tag::nondeterministic_seeded});
  m.def(
      "_categorical_sample_seeded(Tensor logits, SymInt num_samples, int seed, int offset) "
      "-> (Tensor log_prob, Tensor index)");
  // d logits[b, c] = sum_s grad[s, b] * ([c == index[s, b]] - softmax(logits[b])[c]).
  m.def("_categorical_sample_backward(Tensor grad, Tensor logits, Tensor index) -> Tensor");
}

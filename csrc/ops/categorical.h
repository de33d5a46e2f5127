// Host-side pieces of categorical_sample (Gumbel-max): argument checks and the problem the CPU
// and CUDA launchers share.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace gradext::ops {

// logits viewed as contiguous rows x categories; the outputs are (samples, *batch), the draw
// of sample s for row b at s * rows + b. Its Gumbel noise for category c is element
// (s * rows + b) * categories + c of the Philox stream: the layout of gumbel_softmax on
// (samples, *logits.shape), so sample 0 is gumbel_softmax(hard=True)'s argmax.
struct CategoricalProblem {
  at::Tensor logits;  // contiguous
  int64_t rows = 0;
  int64_t categories = 0;
  int64_t samples = 0;
  std::vector<int64_t> out_shape;  // (samples, *batch)
};

CategoricalProblem make_categorical_problem(const at::Tensor& logits, int64_t num_samples);

// Checks for the backward: grad (floating, logits' dtype) and index (int64) of shape
// (samples, *batch) for these logits.
void check_categorical_backward(const at::Tensor& grad, const at::Tensor& logits,
                                const at::Tensor& index);

}  // namespace gradext::ops

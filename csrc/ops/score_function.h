// Host-side pieces of the score-function estimators, score_function_loo (RLOO) and vimco:
// argument checks and the [outer, K, inner] view of the samples shared by the CPU and CUDA
// launchers.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace gradext::ops {

// The K samples of a datapoint lie along `dim` of a contiguous tensor, which is viewed as
// [outer, K, inner]: datapoint (o, i) has its k-th sample at (o * K + k) * inner + i and its
// result at o * inner + i.
struct SampleAxisProblem {
  at::Tensor values;  // contiguous
  int64_t outer = 1;
  int64_t samples = 0;  // K
  int64_t inner = 1;
  std::vector<int64_t> reduced_shape;  // the shape without `dim`
};

// Checks `values` (floating, K >= 2 along dim, dim in range) and `other` (same shape, device,
// floating), naming them as the op's arguments.
SampleAxisProblem make_sample_axis_problem(const char* op, const char* values_name,
                                           const at::Tensor& values, const char* other_name,
                                           const at::Tensor& other, int64_t dim);

// For the backward ops: `values` as above, and grad of the reduced shape and values' dtype.
SampleAxisProblem make_sample_axis_backward_problem(const char* op, const at::Tensor& grad,
                                                    const at::Tensor& values, int64_t dim);

// vimco's saved statistics (common/leave_one_out.h): a new [kVimcoStatsRows, datapoints] tensor
// in the values' math type, and the check of one handed back to the backward. vimco also needs
// K < 2^31 (the argmax index is stored in two 16-bit halves).
at::Tensor make_vimco_stats(const SampleAxisProblem& p);
void check_vimco_stats(const at::Tensor& stats, const SampleAxisProblem& p);

}  // namespace gradext::ops

// Host-side pieces of the relaxation ops, gumbel_softmax and gumbel_sigmoid: argument checks
// and the problem description shared by the CPU and CUDA launchers.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace gradext::ops {

// logits viewed as contiguous rows: rows x categories (categories = size of the last dim;
// gumbel_sigmoid treats every element independently, as one row of numel elements).
struct RelaxedProblem {
  at::Tensor logits;  // contiguous
  int64_t rows = 0;
  int64_t categories = 0;
  double inv_tau = 1.0;
};

// The two relaxations: the softmax reduces along rows (and so refuses rows of 2^31 or more
// categories: ops/row_length.h), the sigmoid is elementwise.
enum class Relaxation { kSoftmax, kSigmoid };

// The op's name in errors: "gumbel_softmax" or "gumbel_sigmoid".
const char* relaxation_name(Relaxation r);

// The value of the ops' tau argument: a one-element floating tensor on the CPU (whatever the
// device of the logits), so that reading it costs no device synchronization. A tensor rather
// than a float in the schema so that torch.compile traces a changing tau (an annealed
// temperature) as a graph input instead of specializing the graph on each value.
double tau_value(Relaxation r, const at::Tensor& tau);
// The same for any op taking such a tau (`op` names it in errors).
double tau_value(const char* op, const at::Tensor& tau);

RelaxedProblem make_relaxed_problem(Relaxation r, const at::Tensor& logits, double tau);

// Checks for the fused backward: grad and the saved soft sample, same shape, float, one device.
void check_relaxed_backward(Relaxation r, const at::Tensor& grad, const at::Tensor& y_soft,
                            double tau);

}  // namespace gradext::ops

// Host side shared by the elementwise samplers of two broadcasting parameters (gamma_rsample:
// concentration and rate; von_mises_rsample: loc and concentration): the argument checks, the
// broadcast and the layouts their kernels iterate, forward and backward. Each family's own
// problem struct names the two parameters; the checks and their messages are written once here.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "common/layout2d.h"

namespace gradext::ops {

// Forward: layout input 0 is the first parameter, input 1 the second, both over the broadcast
// sample shape S and in the promoted dtype; the output is contiguous (K, *S) (or S), element
// k * numel(S) + s.
struct TwoParameterForward {
  at::Tensor first, second;
  Layout2D layout;
  std::vector<int64_t> out_shape;
  int64_t sample_numel = 0;  // numel(S)
};

TwoParameterForward make_two_parameter_forward(const char* op, const char* first_name,
                                               const at::Tensor& first, const char* second_name,
                                               const at::Tensor& second,
                                               std::optional<int64_t> num_samples);

// Backward: elementwise over the saved sample's shape, with S its trailing dimensions that both
// parameters broadcast to (the sample is (K, *S) or S; a vmap rule may add batch dimensions to
// either side), the parameters through the layout over S; grad and sample contiguous,
// everything in grad's dtype.
struct TwoParameterBackward {
  at::Tensor grad, sample, first, second;
  Layout2D layout;
  int64_t sample_numel = 0;  // numel(S)
};

TwoParameterBackward make_two_parameter_backward(const char* op, const at::Tensor& grad,
                                                 const char* sample_name,
                                                 const at::Tensor& sample,
                                                 const char* first_name, const at::Tensor& first,
                                                 const char* second_name,
                                                 const at::Tensor& second);

}  // namespace gradext::ops

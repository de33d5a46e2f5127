// von_mises_rsample: angles x ~ von Mises(loc, concentration) by Best and Fisher's rejection
// sampler on per-element Philox sub-streams, with the implicit reparameterization gradient
// (csrc/common/von_mises_math.h) in a fused backward that reads the saved samples. Host-side
// pieces shared by the CPU and CUDA launchers: argument checks, broadcasting and the problem
// descriptions the kernels consume.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "common/layout2d.h"

namespace gradext::ops {

// Forward problem. Layout input 0 is loc, input 1 is concentration, both over the broadcast
// sample shape S; the output is contiguous (K, *S) (or S), element k * numel(S) + s.
struct VonMisesForwardProblem {
  at::Tensor loc;            // in the result dtype
  at::Tensor concentration;  // in the result dtype
  Layout2D layout;
  std::vector<int64_t> out_shape;
  int64_t sample_numel = 0;  // numel(S)
};

VonMisesForwardProblem make_von_mises_forward_problem(const at::Tensor& loc,
                                                      const at::Tensor& concentration,
                                                      std::optional<int64_t> num_samples);

// Backward problem: elementwise over x's shape, with S its trailing dimensions that loc and
// concentration broadcast to (x is (K, *S) or S; a vmap rule may add batch dimensions to
// either side) and loc and concentration through the layout over S; grad and x contiguous,
// everything in grad's dtype.
struct VonMisesBackwardProblem {
  at::Tensor grad;
  at::Tensor x;
  at::Tensor loc;
  at::Tensor concentration;
  Layout2D layout;
  int64_t sample_numel = 0;  // numel(S)
};

VonMisesBackwardProblem make_von_mises_backward_problem(const at::Tensor& grad,
                                                        const at::Tensor& x,
                                                        const at::Tensor& loc,
                                                        const at::Tensor& concentration);

// A parameter that defines no von Mises distribution, as a CPU kernel reports it: the first
// element of S (in memory order of the output) whose loc is not finite, else whose
// concentration is not positive and finite.
struct InvalidVonMisesParameter {
  int64_t position = -1;  // flat position in S; -1: none found
  bool is_concentration = false;
  double value = 0.0;
};

// The ValueError naming the argument and its value.
[[noreturn]] void throw_invalid_von_mises_parameter(const InvalidVonMisesParameter& invalid);

}  // namespace gradext::ops

// gamma_rsample: z ~ Gamma(concentration, rate) by a rejection sampler on per-element Philox
// sub-streams, with the implicit reparameterization gradient (csrc/common/gamma_math.h) in a
// fused backward that reads the saved samples. Host-side pieces shared by the CPU and CUDA
// launchers: argument checks, broadcasting and the problem descriptions the kernels consume.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <tuple>
#include <optional>
#include <vector>

#include "common/layout2d.h"

namespace gradext::ops {

// Forward problem. Layout input 0 is concentration, input 1 is rate, both over the broadcast
// sample shape S; the output is contiguous (K, *S) (or S), element k * numel(S) + s.
struct GammaForwardProblem {
  at::Tensor concentration;  // in the result dtype
  at::Tensor rate;           // in the result dtype
  Layout2D layout;
  std::vector<int64_t> out_shape;
  int64_t sample_numel = 0;  // numel(S)
};

GammaForwardProblem make_gamma_forward_problem(const at::Tensor& concentration,
                                               const at::Tensor& rate,
                                               std::optional<int64_t> num_samples);

// Backward problem: elementwise over z's shape, with S its trailing dimensions that
// concentration and rate broadcast to (z is (K, *S) or S; a vmap rule may add batch dimensions
// to either side) and concentration and rate through the layout over S; grad and z contiguous,
// everything in grad's dtype.
struct GammaBackwardProblem {
  at::Tensor grad;
  at::Tensor z;
  at::Tensor concentration;
  at::Tensor rate;
  Layout2D layout;
  int64_t sample_numel = 0;  // numel(S)
};

GammaBackwardProblem make_gamma_backward_problem(const at::Tensor& grad, const at::Tensor& z,
                                                 const at::Tensor& concentration,
                                                 const at::Tensor& rate);

// The backward's outputs: z's shape where output_mask asks for them, empty (0 elements) where not.
std::tuple<at::Tensor, at::Tensor> empty_gamma_grads(const GammaBackwardProblem& p,
                                                     std::array<bool, 2> output_mask);

// A parameter that defines no Gamma distribution, as a CPU kernel reports it: the first element
// of S (in memory order of the output) whose concentration, else rate, is not positive and
// finite.
struct InvalidGammaParameter {
  int64_t position = -1;  // flat position in S; -1: none found
  bool is_rate = false;
  double value = 0.0;
};

// The ValueError naming the argument and its value.
[[noreturn]] void throw_invalid_gamma_parameter(const InvalidGammaParameter& invalid);

}  // namespace gradext::ops

// _first_invalid_parameter: the argument checks of gradext.distributions' classes (torch's
// constraints.real and constraints.positive, elementwise) as one pass over every parameter, in
// place of torch's two kernels and a host sync per parameter. Host-side pieces shared by the CPU
// and CUDA kernels.
#pragma once

#include <ATen/core/List.h>
#include <ATen/core/Tensor.h>

#include <vector>

namespace gradext::ops {

// The values to check, each cut to its distinct elements (a dimension broadcast with stride 0
// is read once) and contiguous, with whether it must be positive (else: not NaN).
struct ParameterCheckProblem {
  std::vector<at::Tensor> values;
  std::vector<bool> positive;
};

ParameterCheckProblem make_parameter_check_problem(at::TensorList values,
                                                   const c10::List<bool>& positive);

}  // namespace gradext::ops

// _first_invalid_parameter(values, positive) -> int: the index of the first value with an
// element outside its constraint (positive[i]: 0 < x, else x not NaN), or len(values) when all
// hold. gradext.distributions runs it where torch's Distribution.__init__ would run one
// constraint check, one all() and one host sync per parameter; when it finds an invalid value,
// torch's own checks run and raise torch's error. The per-element rule:
// csrc/common/parameter_constraint.h.
#include "ops/parameter_check.h"

#include <ATen/ATen.h>
#include <torch/library.h>

#include "ops/argument_checks.h"
#include "ops/autograd_support.h"

namespace gradext::ops {
namespace {

constexpr const char* kOp = "_first_invalid_parameter";

// The elements of `t` that are distinct in memory: each dimension of stride 0 (a broadcast
// number or row, as torch.distributions' broadcast_all makes them) cut to length 1.
at::Tensor distinct_elements(const at::Tensor& t) {
  std::vector<int64_t> sizes = t.sizes().vec();
  bool broadcast = false;
  for (int64_t d = 0; d < t.dim(); ++d) {
    if (t.stride(d) == 0 && sizes[d] > 1) {
      sizes[d] = 1;
      broadcast = true;
    }
  }
  const at::Tensor distinct = broadcast ? t.as_strided(sizes, t.strides()) : t;
  return distinct.contiguous();
}

// The op's autograd kernel: it has no differentiable output, so it only steps below the autograd
// keys. Registered so that a call with parameters that require grad (every call from a model)
// does not pay torch's generic autograd fallback, which inspects every input and output.
int64_t first_invalid_parameter_autograd(at::TensorList values,
                                         const c10::List<bool>& positive) {
  static const auto op =
      typed_op<int64_t(at::TensorList, const c10::List<bool>&)>("gradext::_first_invalid_parameter");
  return call_below_autograd(op, values, positive);
}

}  // namespace

ParameterCheckProblem make_parameter_check_problem(at::TensorList values,
                                                   const c10::List<bool>& positive) {
  TORCH_CHECK(values.size() == positive.size(), kOp, ": values and positive must have the same ",
              "length, got ", values.size(), " and ", positive.size());
  ParameterCheckProblem p;
  p.values.reserve(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    check_floating(values[i], kOp, "values");
    if (i > 0) check_same_device(values[0], "values[0]", values[i], "another value", kOp);
    p.values.push_back(distinct_elements(values[i]));
  }
  p.positive.assign(positive.begin(), positive.end());
  return p;
}

}  // namespace gradext::ops

TORCH_LIBRARY_FRAGMENT(gradext, m) {
  m.def("_first_invalid_parameter(Tensor[] values, bool[] positive) -> int");
}

TORCH_LIBRARY_IMPL(gradext, Autograd, m) {
  m.impl("_first_invalid_parameter", &gradext::ops::first_invalid_parameter_autograd);
}

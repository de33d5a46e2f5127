#include "ops/two_parameter_problem.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <utility>

#include "ops/argument_checks.h"
#include "ops/broadcast_layout.h"

namespace gradext::ops {

TwoParameterForward make_two_parameter_forward(const char* op, const char* first_name,
                                               const at::Tensor& first, const char* second_name,
                                               const at::Tensor& second,
                                               std::optional<int64_t> num_samples) {
  check_floating(first, op, first_name);
  check_floating(second, op, second_name);
  check_same_device(first, first_name, second, second_name, op);
  TORCH_CHECK_VALUE(!num_samples.has_value() || *num_samples >= 1, op,
                    ": num_samples must be None or >= 1, got ", num_samples.value_or(0));
  TwoParameterForward p;
  const std::vector<int64_t> sample_shape =
      broadcast_parameter_shape(op, first_name, first, second_name, second);
  const at::ScalarType dtype = at::promote_types(first.scalar_type(), second.scalar_type());
  p.sample_numel = c10::multiply_integers(sample_shape);
  if (num_samples.has_value()) p.out_shape.push_back(*num_samples);
  p.out_shape.insert(p.out_shape.end(), sample_shape.begin(), sample_shape.end());
  std::vector<at::Tensor> inputs{first.to(dtype), second.to(dtype)};
  p.layout = make_layout_2d(sample_shape, inputs);
  p.first = std::move(inputs[0]);
  p.second = std::move(inputs[1]);
  return p;
}

TwoParameterBackward make_two_parameter_backward(const char* op, const at::Tensor& grad,
                                                 const char* sample_name,
                                                 const at::Tensor& sample,
                                                 const char* first_name, const at::Tensor& first,
                                                 const char* second_name,
                                                 const at::Tensor& second) {
  check_floating(grad, op, "grad");
  check_floating(sample, op, sample_name);
  check_floating(first, op, first_name);
  check_floating(second, op, second_name);
  check_same_device(grad, "grad", sample, sample_name, op);
  check_same_device(sample, sample_name, first, first_name, op);
  check_same_device(sample, sample_name, second, second_name, op);
  TORCH_CHECK_VALUE(grad.sizes().equals(sample.sizes()), op, ": grad of shape ", grad.sizes(),
                    " must have ", sample_name, "'s shape ", sample.sizes());
  const int64_t rank = std::max(first.dim(), second.dim());
  TORCH_CHECK_VALUE(rank <= sample.dim(), op, ": ", first_name, " of shape ", first.sizes(),
                    " and ", second_name, " of shape ", second.sizes(),
                    " have more dimensions than ", sample_name, " ", sample.sizes());
  const at::IntArrayRef sample_shape = sample.sizes().slice(sample.dim() - rank);
  for (const auto& [name, t] : {std::pair<const char*, const at::Tensor&>{first_name, first},
                                {second_name, second}}) {
    TORCH_CHECK_VALUE(at::is_expandable_to(t.sizes(), sample_shape), op, ": ", name,
                      " of shape ", t.sizes(), " does not broadcast to ", sample_name,
                      "'s trailing shape ", sample_shape);
  }
  TwoParameterBackward p;
  const at::ScalarType dtype = grad.scalar_type();
  p.grad = grad.contiguous();
  p.sample = sample.to(dtype).contiguous();
  p.sample_numel = c10::multiply_integers(sample_shape);
  std::vector<at::Tensor> inputs{first.to(dtype), second.to(dtype)};
  p.layout = make_layout_2d(sample_shape, inputs);
  p.first = std::move(inputs[0]);
  p.second = std::move(inputs[1]);
  return p;
}

}  // namespace gradext::ops

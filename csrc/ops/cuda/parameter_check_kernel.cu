// CUDA implementation of _first_invalid_parameter (csrc/ops/parameter_check.cpp): one
// grid-stride launch per value marks the value's flag when any element breaks its constraint,
// and one copy of the flags to the host answers for all of them (torch's checks synchronize
// once per parameter).
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/core/Tensor.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "common/parameter_constraint.h"
#include "ops/cuda/launch.cuh"
#include "ops/parameter_check.h"

namespace gradext::cuda {
namespace {

template <typename scalar_t>
__global__ void flag_invalid_impl(const scalar_t* __restrict__ x, int64_t numel, bool positive,
                                  int32_t* __restrict__ flag) {
  using math_t = at::opmath_type<scalar_t>;
  const GridStride walk(ThreadIndex::current());
  bool all = true;
  for (int64_t i = walk.first; i < numel; i += walk.stride) {
    all &= satisfies_constraint(static_cast<math_t>(x[i]), positive);
  }
  if (!all) *flag = 1;  // every writer writes the same 1
}

int64_t first_invalid_parameter_cuda(at::TensorList values, const c10::List<bool>& positive) {
  const ops::ParameterCheckProblem p = ops::make_parameter_check_problem(values, positive);
  const auto count = static_cast<int64_t>(p.values.size());
  if (count == 0) return 0;
  c10::cuda::CUDAGuard guard(p.values[0].device());
  at::Tensor flags = at::zeros({count}, p.values[0].options().dtype(at::kInt));
  const auto stream = at::cuda::getCurrentCUDAStream();
  for (int64_t i = 0; i < count; ++i) {
    const at::Tensor& value = p.values[i];
    if (value.numel() == 0) continue;
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, value.scalar_type(),
                                    "_first_invalid_parameter_cuda", [&] {
      flag_invalid_impl<scalar_t><<<grid_for(value.numel()), kThreads, 0, stream>>>(
          value.const_data_ptr<scalar_t>(), value.numel(), p.positive[i],
          flags.mutable_data_ptr<int32_t>() + i);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  }
  const at::Tensor host = flags.cpu();  // the one synchronization
  const int32_t* flag = host.const_data_ptr<int32_t>();
  for (int64_t i = 0; i < count; ++i) {
    if (flag[i] != 0) return i;
  }
  return count;
}

}  // namespace
}  // namespace gradext::cuda

TORCH_LIBRARY_IMPL(gradext, CUDA, m) {
  m.impl("_first_invalid_parameter", &gradext::cuda::first_invalid_parameter_cuda);
}

// Argument checks shared by the host code of the op families (csrc/ops/<family>.cpp): each
// error names the op, the argument and what it got, as the Python front end's do.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

namespace gradext::ops {

inline void check_floating(const at::Tensor& t, const char* op, const char* name) {
  TORCH_CHECK_TYPE(at::isFloatingType(t.scalar_type()), op, ": ", name,
                   " must be a floating-point tensor, got dtype ", t.scalar_type());
}

inline void check_same_device(const at::Tensor& a, const char* name_a, const at::Tensor& b,
                              const char* name_b, const char* op) {
  TORCH_CHECK(a.device() == b.device(), op, ": ", name_a, " is on ", a.device(), " but ", name_b,
              " is on ", b.device(), "; both must be on the same device");
}

}  // namespace gradext::ops

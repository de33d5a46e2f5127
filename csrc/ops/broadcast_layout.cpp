#include "ops/broadcast_layout.h"

#include <c10/util/Exception.h>

#include <algorithm>

namespace gradext::ops {
namespace {

struct Dim {
  int64_t size;
  int64_t stride[kMaxLayoutInputs];
};

// The dimensions of `shape` (size-1 dimensions dropped) with each input's broadcast stride,
// merged where row-major order allows.
std::vector<Dim> coalesced_dims(at::IntArrayRef shape, const std::vector<at::Tensor>& inputs) {
  const int64_t ndim = static_cast<int64_t>(shape.size());
  std::vector<Dim> dims;
  for (int64_t d = 0; d < ndim; ++d) {
    if (shape[d] == 1) continue;
    Dim dim{shape[d], {0, 0}};
    for (size_t k = 0; k < inputs.size(); ++k) {
      const at::Tensor& t = inputs[k];
      const int64_t td = d - (ndim - t.dim());  // broadcasting aligns trailing dimensions
      dim.stride[k] = (td >= 0 && t.size(td) != 1) ? t.stride(td) : 0;
    }
    if (!dims.empty()) {
      Dim& outer = dims.back();
      bool mergeable = true;
      for (size_t k = 0; k < inputs.size(); ++k) {
        mergeable = mergeable && outer.stride[k] == dim.stride[k] * dim.size;
      }
      if (mergeable) {
        outer.size *= dim.size;
        for (size_t k = 0; k < inputs.size(); ++k) outer.stride[k] = dim.stride[k];
        continue;
      }
    }
    dims.push_back(dim);
  }
  return dims;
}

}  // namespace

Layout2D make_layout_2d(at::IntArrayRef shape, std::vector<at::Tensor>& inputs) {
  TORCH_INTERNAL_ASSERT(static_cast<int>(inputs.size()) <= kMaxLayoutInputs);
  std::vector<Dim> dims = coalesced_dims(shape, inputs);
  if (dims.size() > 2) {
    for (at::Tensor& t : inputs) t = t.expand(shape).contiguous();
    dims = coalesced_dims(shape, inputs);
  }
  TORCH_INTERNAL_ASSERT(dims.size() <= 2);
  Layout2D layout;
  if (dims.size() == 2) {
    layout.rows = dims[0].size;
    layout.cols = dims[1].size;
    for (size_t k = 0; k < inputs.size(); ++k) {
      layout.row_stride[k] = dims[0].stride[k];
      layout.col_stride[k] = dims[1].stride[k];
    }
  } else if (dims.size() == 1) {
    layout.cols = dims[0].size;
    for (size_t k = 0; k < inputs.size(); ++k) layout.col_stride[k] = dims[0].stride[k];
  }
  return layout;
}

std::vector<int64_t> broadcast_parameter_shape(const char* op, const char* name_a,
                                               const at::Tensor& a, const char* name_b,
                                               const at::Tensor& b) {
  const int64_t ndim = std::max(a.dim(), b.dim());
  std::vector<int64_t> shape(ndim);
  for (int64_t d = 0; d < ndim; ++d) {
    const int64_t da = d - (ndim - a.dim());
    const int64_t db = d - (ndim - b.dim());
    const int64_t sa = da >= 0 ? a.size(da) : 1;
    const int64_t sb = db >= 0 ? b.size(db) : 1;
    TORCH_CHECK_VALUE(sa == sb || sa == 1 || sb == 1, op, ": ", name_a, " of shape ", a.sizes(),
                      " and ", name_b, " of shape ", b.sizes(), " do not broadcast (dimension ",
                      d, ": ", sa, " vs ", sb, ")");
    shape[d] = sa == 1 ? sb : sa;
  }
  return shape;
}

}  // namespace gradext::ops

// Host side of Layout2D: describe inputs broadcast to a common shape without materializing the
// broadcast (docs/design.md: index arithmetic, never an expand().contiguous() on the hot path).
#pragma once

#include <ATen/core/Tensor.h>

#include <vector>

#include "common/layout2d.h"

namespace gradext::ops {

// Views `inputs` (each broadcastable to `shape`) as a [rows, cols] iteration space over `shape`
// in row-major order. Adjacent dimensions merge when every input's strides allow it, which
// covers contiguous tensors, chunk()/narrow() views of a wider tensor, and broadcasting along
// leading or trailing dimensions. Layouts that still need more than two dimensions (say a
// transposed 3-D view) are rare: those inputs are replaced by contiguous copies of their
// broadcast, which is correct for any strides.
Layout2D make_layout_2d(at::IntArrayRef shape, std::vector<at::Tensor>& inputs);

// The broadcast shape of two parameters of `op`, or a ValueError naming both and the first
// dimension where they disagree.
std::vector<int64_t> broadcast_parameter_shape(const char* op, const char* name_a,
                                               const at::Tensor& a, const char* name_b,
                                               const at::Tensor& b);

}  // namespace gradext::ops

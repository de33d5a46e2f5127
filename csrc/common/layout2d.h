// A broadcast iteration space flattened to [rows, cols], with each input's strides in it.
// Device-usable plain data; built on the host by csrc/ops/broadcast_layout.cpp.
#pragma once

#include <cstdint>

#include "macros.h"

namespace gradext {

constexpr int kMaxLayoutInputs = 2;

struct Layout2D {
  int64_t rows = 1;
  int64_t cols = 1;
  int64_t row_stride[kMaxLayoutInputs] = {0, 0};
  int64_t col_stride[kMaxLayoutInputs] = {0, 0};

  // Memory offset (in elements) of flat position `pos` (row-major over [rows, cols]) in input k.
  GRADEXT_INLINE int64_t offset(int k, int64_t pos) const {
    const int64_t row = pos / cols;
    return row * row_stride[k] + (pos - row * cols) * col_stride[k];
  }

  // Every input is dense and in the iteration order: one flat pointer walks them all.
  GRADEXT_INLINE bool all_contiguous(int num_inputs) const {
    for (int k = 0; k < num_inputs; ++k) {
      if (col_stride[k] != 1 || (rows > 1 && row_stride[k] != cols)) return false;
    }
    return true;
  }
};

}  // namespace gradext

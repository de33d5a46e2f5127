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

// Walks flat positions pos, pos + 1, ... of a Layout2D in order, keeping (row, col) so that each
// step costs an increment instead of the 64-bit division offset() needs (tens of cycles on
// x86): the elementwise loops of rejection samplers, which cannot use the tiled gathers.
struct Layout2DCursor {
  const Layout2D* layout;
  int64_t row, col;

  GRADEXT_INLINE Layout2DCursor(const Layout2D& l, int64_t pos)
      : layout(&l), row(pos / l.cols), col(pos - (pos / l.cols) * l.cols) {}

  GRADEXT_INLINE int64_t offset(int k) const {
    return row * layout->row_stride[k] + col * layout->col_stride[k];
  }

  // The next position; after the last one of the layout, back to position 0.
  GRADEXT_INLINE void advance() {
    if (++col == layout->cols) {
      col = 0;
      if (++row == layout->rows) row = 0;
    }
  }
};

}  // namespace gradext

// The longest row the row-wise ops (gumbel_softmax, categorical_sample) take: the CPU row
// reductions index a row with int32 (vectorized min/argmax reductions run at twice the width
// of int64 ones), so rows of 2^31 or more categories are refused before anything is allocated.
// No practical vocabulary comes near it; the fallback refuses the same rows (gradext/_validation.py).
#pragma once

#include <c10/util/Exception.h>

#include <cstdint>

namespace gradext::ops {

constexpr int64_t kMaxRowLength = (int64_t{1} << 31) - 1;

inline void check_row_length(const char* op, const char* name, int64_t categories) {
  TORCH_CHECK_VALUE(categories <= kMaxRowLength, op, ": rows of at most 2^31 - 1 categories are "
                    "supported, got ", categories, " along the category dim of ", name);
}

}  // namespace gradext::ops

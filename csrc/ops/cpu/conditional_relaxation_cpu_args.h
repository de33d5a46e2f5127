// What the per-ISA CPU kernels of conditional_relaxation receive (see gaussian_cpu_args.h for why
// raw pointers).
#pragma once

#include <cstdint>

#include "common/philox.h"

namespace gradext::cpu {

// Elements per tile: the Bernoulli kernels' unit of work, and the categorical kernels' batch of
// whole rows (rows longer than a tile are one batch each).
constexpr int64_t kConditionalTile = 512;

struct ConditionalRelaxationArgs {
  const void* logits;  // contiguous rows x categories
  int64_t rows;
  int64_t categories;  // the Bernoulli case: one row of every element
  double inv_tau;
  PhiloxStream stream;
  // Forward: the three outputs. Backward: the incoming gradients (null: zero) and the output.
  void* b = nullptr;
  void* soft = nullptr;
  void* soft_cond = nullptr;
  const void* grad_soft = nullptr;
  const void* grad_soft_cond = nullptr;
  void* grad_logits = nullptr;
  // The Jacobian-vector product: the logits' tangent in, the tangents of soft and soft_cond out
  // (through `soft` and `soft_cond`).
  const void* tangent = nullptr;
  // The noise op: the two noises in the math type.
  void* noise = nullptr;
  void* cond_noise = nullptr;
};

// Elements of per-task scratch the categorical kernels need for rows of `categories`: a batch's
// capacity (a tile, or one longer row) times the per-element arrays, plus the per-row ones.
inline int64_t conditional_scratch_capacity(int64_t categories) {
  const int64_t elements = categories > kConditionalTile ? categories : kConditionalTile;
  return (elements + 15) & ~int64_t{15};  // keeps every array 64-byte aligned
}
inline int64_t conditional_scratch_bytes(int64_t categories) {
  const int64_t capacity = conditional_scratch_capacity(categories);
  // 13 per-element arrays of at most 8 bytes (two with 8 extra for the noise fills' lead),
  // per row an int64 argmax and a validity flag.
  return (13 * capacity + 16) * 8 + capacity * 9 + 64;
}

// (args, first work item, end, scratch): Bernoulli tiles (no scratch) or categorical rows.
using ConditionalRelaxationRange = void (*)(const ConditionalRelaxationArgs&, int64_t, int64_t,
                                            void*);

}  // namespace gradext::cpu

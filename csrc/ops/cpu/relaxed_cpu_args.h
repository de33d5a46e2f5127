// What the per-ISA CPU relaxation kernels receive (see gaussian_cpu_args.h for why raw
// pointers).
#pragma once

#include <cstdint>

#include "common/philox.h"

namespace gradext::cpu {

// Elements per noise tile within a row (softmax) or of the flat tensor (sigmoid).
constexpr int64_t kRelaxedTile = 1024;

struct RelaxedForwardArgs {
  const void* logits;  // contiguous rows x categories
  void* y;             // the output: one-hot (hard) or soft sample
  void* y_soft;        // the soft sample when hard, else nullptr
  int64_t rows;
  int64_t categories;
  double inv_tau;
  PhiloxStream stream;
};

struct RelaxedBackwardArgs {
  const void* grad;
  const void* y_soft;
  void* grad_logits;
  int64_t rows;
  int64_t categories;
  double inv_tau;
};

// (args, first row or tile, end, scratch of `categories` opmath values)
using RelaxedForwardRange = void (*)(const RelaxedForwardArgs&, int64_t, int64_t, void*);
using RelaxedBackwardRange = void (*)(const RelaxedBackwardArgs&, int64_t, int64_t, void*);

}  // namespace gradext::cpu

// What the per-ISA CPU categorical_sample kernels receive (see gaussian_cpu_args.h for
// why raw pointers).
#pragma once

#include <cstdint>

#include "common/philox.h"

namespace gradext::cpu {

struct CategoricalForwardArgs {
  const void* logits;  // contiguous rows x categories
  int64_t* index;      // (samples, rows)
  void* log_prob;      // (samples, rows)
  void* log_normalizer;  // opmath scratch of `rows` values: logsumexp of each row
  int64_t rows;
  int64_t categories;
  int64_t samples;
  PhiloxStream stream;
};

struct CategoricalBackwardArgs {
  const void* grad;      // (samples, rows)
  const void* logits;    // contiguous rows x categories
  const int64_t* index;  // (samples, rows)
  void* grad_logits;     // rows x categories
  int64_t rows;
  int64_t categories;
  int64_t samples;
};

// (args, first work item, end, scratch of `categories` opmath values)
using CategoricalForwardRange = void (*)(const CategoricalForwardArgs&, int64_t, int64_t, void*);
using CategoricalBackwardRange = void (*)(const CategoricalBackwardArgs&, int64_t, int64_t, void*);

}  // namespace gradext::cpu

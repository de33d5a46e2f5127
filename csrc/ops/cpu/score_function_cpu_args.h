// What the per-ISA CPU score-function kernels receive (see gaussian_cpu_args.h for why
// raw pointers).
#pragma once

#include <algorithm>
#include <cstdint>

namespace gradext::cpu {

// Datapoints per block: the unit of parallel work. A block's samples are streamed k by k, each
// step touching kSampleLanes datapoints, so the per-datapoint state lives in short arrays that
// the loops over lanes vectorize.
constexpr int64_t kSampleLanes = 1024;

// The samples viewed as [outer, K, inner] (ops/score_function.h).
struct SampleBlockArgs {
  const void* values;  // f or the log weights
  const void* grad;    // backward: the incoming gradient, [outer, inner]
  void* out;           // forward: the result, [outer, inner]; backward: d values or d log_prob
  void* out2;          // vimco backward: d log_prob (out is d log_weights); nullptr to skip
  void* stats;         // vimco: the statistics, [kVimcoStatsRows, outer * inner] opmath,
                       // written by the forward and read by the backward
  int64_t outer;
  int64_t samples;
  int64_t inner;
};

// A block of datapoints: with inner == 1 (samples along the last dim) consecutive datapoints
// along `outer`, else a run of consecutive `inner` positions of one outer index. Either way the
// block's per-datapoint results are contiguous.
struct LaneBlock {
  int64_t first_value;   // flat index of sample 0 of lane 0
  int64_t lane_stride;   // between the samples of neighbouring lanes
  int64_t sample_stride; // between samples k and k + 1 of one lane
  int64_t first_result;  // flat index of lane 0's result
  int64_t lanes;
};

inline int64_t lane_blocks(const SampleBlockArgs& a) {
  if (a.inner == 1) return (a.outer + kSampleLanes - 1) / kSampleLanes;
  return a.outer * ((a.inner + kSampleLanes - 1) / kSampleLanes);
}

inline LaneBlock lane_block(const SampleBlockArgs& a, int64_t block) {
  if (a.inner == 1) {
    const int64_t o0 = block * kSampleLanes;
    return LaneBlock{o0 * a.samples, a.samples, 1, o0, std::min(kSampleLanes, a.outer - o0)};
  }
  const int64_t tiles = (a.inner + kSampleLanes - 1) / kSampleLanes;
  const int64_t o = block / tiles;
  const int64_t i0 = (block % tiles) * kSampleLanes;
  return LaneBlock{o * a.samples * a.inner + i0, 1, a.inner, o * a.inner + i0,
                   std::min(kSampleLanes, a.inner - i0)};
}

// Opmath values of the per-task sample cache of the two-pass kernels (score_function_cpu_impl.h),
// or 0 when K is too large for it to stay in L2.
inline int64_t sample_cache_size(int64_t samples, int64_t opmath_bytes) {
  const int64_t size = samples * kSampleLanes;
  return size * opmath_bytes <= (256 << 10) ? size : 0;
}

// (args, first block, end block, sample cache or nullptr)
using SampleBlockRange = void (*)(const SampleBlockArgs&, int64_t, int64_t, void*);

}  // namespace gradext::cpu

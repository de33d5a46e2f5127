// Which elements, rows and samples each thread of a CUDA launch owns, and which launch shape the
// host picks, as plain functions of (block, thread, grid size, block size) and of the problem.
// The kernels call them with blockIdx / threadIdx; csrc/tests/test_launch_map.cpp calls them on
// the CPU for every (block, thread) of the launches the host would choose at boundary shapes,
// and checks that every output element is written exactly once and no index passes the end.
// No CUDA header: this file compiles with any C++ compiler.
#pragma once

#include <algorithm>
#include <cstdint>

#include "common/macros.h"

namespace gradext::cuda {

constexpr int kThreads = 256;  // threads per block of the elementwise and per-datapoint kernels
constexpr int kWarp = 32;
// Row-wise kernels (row_reduce.cuh): a thread walks its row in runs of 4 columns, so a row of C
// categories keeps (C + 3) / 4 threads busy. Short rows (the discrete latents of VAEs: 2 to 64
// classes) take 4 threads each, 8 rows per warp; up to 1024 a warp; beyond, a block of 512.
constexpr int kShortRowThreads = 4;
constexpr int64_t kShortRowLimit = 64;
constexpr int64_t kWarpRowLimit = 1024;
constexpr int kRowBlockThreads = 512;
// Grid-stride launches fill every SM this many times over, no more.
constexpr int64_t kBlocksPerSm = 16;

// One thread of a one-dimensional launch (plus the y block index of the Gaussian's 2-D grid).
struct ThreadIndex {
  int64_t block;
  int64_t thread;
  int64_t blocks;   // gridDim.x
  int64_t threads;  // blockDim.x
  int64_t block_y;

#if defined(__CUDACC__)
  __device__ __forceinline__ static ThreadIndex current() {
    return ThreadIndex{blockIdx.x, threadIdx.x, gridDim.x, blockDim.x, blockIdx.y};
  }
#endif
};

// The grid-stride walk over `items`: first, first + stride, ... (64-bit: items may pass 2^31).
struct GridStride {
  int64_t first;
  int64_t stride;

  GRADEXT_INLINE explicit GridStride(const ThreadIndex& t)
      : first(t.block * t.threads + t.thread), stride(t.blocks * t.threads) {}
};

// Blocks for a grid-stride launch over work_items on a device with `sms` multiprocessors.
inline int64_t grid_blocks(int64_t work_items, int threads, int64_t sms) {
  const int64_t needed = (work_items + threads - 1) / threads;
  return std::max<int64_t>(1, std::min<int64_t>(needed, sms * kBlocksPerSm));
}

// The launch of a row-wise kernel over `items` rows of C columns.
struct RowLaunch {
  int group;  // threads per row: kShortRowThreads, kWarp or kRowBlockThreads
  int64_t blocks;
  int threads;
};

inline RowLaunch row_launch(int64_t items, int64_t C, int64_t sms) {
  if (C <= kShortRowLimit) {
    constexpr int rows_per_block = kThreads / kShortRowThreads;
    const int64_t blocks = std::min<int64_t>((items + rows_per_block - 1) / rows_per_block,
                                             grid_blocks(items * kShortRowThreads, kThreads, sms));
    return RowLaunch{kShortRowThreads, blocks, kThreads};
  }
  if (C <= kWarpRowLimit) {
    constexpr int rows_per_block = kThreads / kWarp;
    const int64_t blocks = std::min<int64_t>((items + rows_per_block - 1) / rows_per_block,
                                             grid_blocks(items * kWarp, kThreads, sms));
    return RowLaunch{kWarp, blocks, kThreads};
  }
  const int64_t blocks = std::min<int64_t>(
      items, grid_blocks(items * kRowBlockThreads, kRowBlockThreads, sms));
  return RowLaunch{kRowBlockThreads, blocks, kRowBlockThreads};
}

// The rows of one group of kGroup threads (a power of two; groups below a warp are aligned
// within it): blockDim.x / kGroup groups per block, a grid-stride walk. The loop runs equally
// often on every thread of a warp (and of a block, for block groups), so that the group
// reductions' warp shuffles and barriers see all their threads: near the end a group whose row
// is past the last (`active()` false) redoes the last row and must write nothing.
//
//   for (RowWalk<kGroup> walk(ThreadIndex::current()); walk.more(rows); walk.next()) {
//     const int64_t row = walk.row_or_last(rows);
//     ... group_reduce ...; if (walk.active(rows)) store;
//   }
//
// Within the row, lane() = thread % kGroup takes the runs of 4 columns lane, lane + kGroup, ...
// (the forward kernels) or the columns lane, lane + kGroup, ... (the backward kernels).
// This thread's lane within its group of kGroup threads.
template <int kGroup>
GRADEXT_INLINE int group_lane(const ThreadIndex& t) {
  return static_cast<int>(t.thread % kGroup);
}

template <int kGroup>
struct RowWalk {
  int64_t row;
  int64_t stride;
  int64_t lag;  // this group's place among the groups of its warp: its row minus the warp's first
  int lane_;

  GRADEXT_INLINE explicit RowWalk(const ThreadIndex& t)
      : row(t.block * (t.threads / kGroup) + t.thread / kGroup),
        stride(t.blocks * (t.threads / kGroup)),
        lag(kGroup < kWarp ? (t.thread % kWarp) / kGroup : 0),
        lane_(group_lane<kGroup>(t)) {}

  GRADEXT_INLINE bool more(int64_t rows) const { return row - lag < rows; }
  GRADEXT_INLINE void next() { row += stride; }
  GRADEXT_INLINE bool active(int64_t rows) const { return row < rows; }
  GRADEXT_INLINE int64_t row_or_last(int64_t rows) const { return row < rows ? row : rows - 1; }
  GRADEXT_INLINE int lane() const { return lane_; }
};

// The Gaussian forward's 2-D grid for numel(S) % 4 == 0: grid.x strides over the groups of 4
// elements of a sample, grid.y splits the samples into chunks of per_chunk, until the launch has
// about one full wave of threads (2048 per SM).
struct SampleChunks {
  int64_t grid_x;
  int64_t chunks;
  int64_t per_chunk;
};

inline SampleChunks gaussian_sample_chunks(int64_t groups, int64_t num_samples, int64_t sms) {
  const int64_t grid_x = grid_blocks(groups, kThreads, sms);
  const int64_t wanted_threads = sms * 2048;
  int64_t chunks =
      std::min<int64_t>(num_samples, std::max<int64_t>(1, wanted_threads / (grid_x * kThreads)));
  chunks = std::min<int64_t>(chunks, 65535);  // gridDim.y's limit
  const int64_t per_chunk = (num_samples + chunks - 1) / chunks;
  chunks = (num_samples + per_chunk - 1) / per_chunk;
  return SampleChunks{grid_x, chunks, per_chunk};
}

// The samples [*begin, *end) of the chunk block_y.
GRADEXT_INLINE void chunk_samples(int64_t block_y, int64_t per_chunk, int64_t num_samples,
                                  int64_t* begin, int64_t* end) {
  *begin = block_y * per_chunk;
  *end = std::min<int64_t>(num_samples, *begin + per_chunk);
}

}  // namespace gradext::cuda

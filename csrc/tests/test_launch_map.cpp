// The CUDA kernels' thread-to-work maps (ops/cuda/launch_map.h), run on the CPU: for the launch
// shape the host would choose (on an H200's 132 SMs and a small 4-SM device), every (block,
// thread) of the grid is enumerated and what it would write is recorded. Checked for each
// kernel family, at boundary shapes: every output element is written exactly once, no index
// passes the end, 64-bit offsets past 2^31, and for the row-wise kernels the loop runs equally
// often on every thread of a warp (or block) and a row's lanes cover each column exactly once.
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <vector>

#include "ops/cuda/launch_map.h"
#include "tests/check.h"

using gradext::cuda::ThreadIndex;

namespace {

using gradext::testing::check;

constexpr int64_t kSmCounts[] = {132, 4};

// Counts writes per element; reports out-of-range indices and double writes.
struct WriteLog {
  std::vector<uint8_t> count;
  int64_t out_of_range = 0;
  explicit WriteLog(int64_t n) : count(static_cast<size_t>(n), 0) {}
  void write(int64_t i) {
    if (i < 0 || i >= static_cast<int64_t>(count.size())) {
      ++out_of_range;
    } else if (count[i] < 255) {
      ++count[i];
    }
  }
  bool exactly_once() const {
    if (out_of_range != 0) return false;
    for (uint8_t c : count) {
      if (c != 1) return false;
    }
    return true;
  }
};

// Grid-stride kernels with one item per thread step (philox_uniform, the sigmoid backward, the
// per-datapoint score-function kernels, the Gaussian's strided backward).
void test_grid_stride(int64_t items) {
  for (int64_t sms : kSmCounts) {
    const int64_t blocks = gradext::cuda::grid_blocks(items, gradext::cuda::kThreads, sms);
    WriteLog log(items);
    for (int64_t b = 0; b < blocks; ++b) {
      for (int64_t t = 0; t < gradext::cuda::kThreads; ++t) {
        const gradext::cuda::GridStride walk(ThreadIndex{b, t, blocks, gradext::cuda::kThreads, 0});
        for (int64_t i = walk.first; i < items; i += walk.stride) log.write(i);
      }
    }
    char what[160];
    std::snprintf(what, sizeof(what), "grid-stride over %" PRId64 " items (%" PRId64 " SMs): each once",
                  items, sms);
    check(log.exactly_once(), what);
  }
}

// One thread per Philox block of 4 elements (gumbel_sigmoid forward, the Gaussian's strided
// forward): elements 4b .. 4b + 3 below numel.
void test_philox_blocks(int64_t numel) {
  for (int64_t sms : kSmCounts) {
    const int64_t work = (numel + 3) / 4;
    const int64_t blocks = gradext::cuda::grid_blocks(work, gradext::cuda::kThreads, sms);
    WriteLog log(numel);
    for (int64_t b = 0; b < blocks; ++b) {
      for (int64_t t = 0; t < gradext::cuda::kThreads; ++t) {
        const gradext::cuda::GridStride walk(ThreadIndex{b, t, blocks, gradext::cuda::kThreads, 0});
        for (int64_t block = walk.first; 4 * block < numel; block += walk.stride) {
          for (int j = 0; j < 4; ++j) {
            if (4 * block + j < numel) log.write(4 * block + j);
          }
        }
      }
    }
    char what[160];
    std::snprintf(what, sizeof(what), "Philox blocks over %" PRId64 " elements (%" PRId64 " SMs): each once",
                  numel, sms);
    check(log.exactly_once(), what);
  }
}

// The Gaussian's blocked forward: grid.x over the groups of 4 elements of a sample, grid.y over
// chunks of samples; element k * sample_numel + 4g + j.
void test_gaussian_blocked(int64_t sample_numel, int64_t num_samples) {
  for (int64_t sms : kSmCounts) {
    const int64_t groups = sample_numel / 4;
    const auto grid = gradext::cuda::gaussian_sample_chunks(groups, num_samples, sms);
    WriteLog log(sample_numel * num_samples);
    for (int64_t y = 0; y < grid.chunks; ++y) {
      for (int64_t b = 0; b < grid.grid_x; ++b) {
        for (int64_t t = 0; t < gradext::cuda::kThreads; ++t) {
          const ThreadIndex here{b, t, grid.grid_x, gradext::cuda::kThreads, y};
          int64_t k_begin, k_end;
          gradext::cuda::chunk_samples(here.block_y, grid.per_chunk, num_samples, &k_begin, &k_end);
          const gradext::cuda::GridStride walk(here);
          for (int64_t g = walk.first; g < groups; g += walk.stride) {
            for (int64_t k = k_begin; k < k_end; ++k) {
              for (int j = 0; j < 4; ++j) log.write(k * sample_numel + 4 * g + j);
            }
          }
        }
      }
    }
    char what[160];
    std::snprintf(what, sizeof(what),
                  "Gaussian blocked forward, %" PRId64 " x %" PRId64 " (%" PRId64 " SMs, %" PRId64
                  " chunks): each once, gridDim.y <= 65535",
                  num_samples, sample_numel, sms, grid.chunks);
    check(log.exactly_once() && grid.chunks <= 65535, what);
  }
}

// The row-wise kernels over `rows` rows of C columns: each row written by exactly one group
// (write = active), its columns covered once by the group's lanes in runs of 4 (forward) and
// one by one (backward), and the loop count the same on every thread of a warp (a block for
// block groups), which the shuffles and barriers need.
template <int kGroup>
bool walk_rows(int64_t rows, int64_t C, int64_t blocks, int threads) {
  WriteLog forward(rows * C), backward(rows * C);
  bool uniform = true;
  const int64_t runs = (C + 3) / 4;
  const int sync_width = kGroup > gradext::cuda::kWarp ? threads : gradext::cuda::kWarp;
  for (int64_t b = 0; b < blocks; ++b) {
    int64_t first_count = -1;
    for (int64_t t = 0; t < threads; ++t) {
      if (t % sync_width == 0) first_count = -1;
      int64_t count = 0;
      for (gradext::cuda::RowWalk<kGroup> walk(ThreadIndex{b, t, blocks, threads, 0});
           walk.more(rows); walk.next()) {
        ++count;
        const int64_t row = walk.row_or_last(rows);
        if (row < 0 || row >= rows) return false;
        if (!walk.active(rows)) continue;
        for (int64_t run = walk.lane(); run < runs; run += kGroup) {
          for (int j = 0; j < 4 && 4 * run + j < C; ++j) forward.write(row * C + 4 * run + j);
        }
        for (int64_t c = walk.lane(); c < C; c += kGroup) backward.write(row * C + c);
      }
      if (first_count < 0) first_count = count;
      uniform = uniform && count == first_count;
    }
  }
  return uniform && forward.exactly_once() && backward.exactly_once();
}

void test_rows(int64_t rows, int64_t C) {
  for (int64_t sms : kSmCounts) {
    const auto shape = gradext::cuda::row_launch(rows, C, sms);
    bool ok = false;
    if (shape.group == gradext::cuda::kShortRowThreads) {
      ok = walk_rows<gradext::cuda::kShortRowThreads>(rows, C, shape.blocks, shape.threads);
    } else if (shape.group == gradext::cuda::kWarp) {
      ok = walk_rows<gradext::cuda::kWarp>(rows, C, shape.blocks, shape.threads);
    } else {
      ok = walk_rows<gradext::cuda::kRowBlockThreads>(rows, C, shape.blocks, shape.threads);
    }
    char what[200];
    std::snprintf(what, sizeof(what),
                  "rows: %" PRId64 " x %" PRId64 " (group %d, %" PRId64 " blocks, %" PRId64
                  " SMs): every column once, warp-uniform loop",
                  rows, C, shape.group, shape.blocks, sms);
    check(ok, what);
  }
}

// 64-bit offsets: the thread that owns the last Philox block of a launch past 2^31 elements
// reaches it, and the element indices it forms pass 2^31 without overflow (whole coverage is
// checked above at sizes that can be enumerated; the arithmetic is the same).
void test_offsets_past_2_31() {
  const int64_t numel = (int64_t{1} << 31) + 7;
  const int64_t work = (numel + 3) / 4;
  const int64_t blocks = gradext::cuda::grid_blocks(work, gradext::cuda::kThreads, 132);
  const int64_t stride = blocks * gradext::cuda::kThreads;
  const int64_t last = work - 1;
  const int64_t owner = last % stride;
  const gradext::cuda::GridStride walk(ThreadIndex{owner / gradext::cuda::kThreads,
                                                   owner % gradext::cuda::kThreads, blocks,
                                                   gradext::cuda::kThreads, 0});
  int64_t block = walk.first;
  while (block + walk.stride < work) block += walk.stride;
  check(block == last && 4 * block + 2 == numel - 1,
        "the owner of the last Philox block past 2^31 reaches it with 64-bit indices");
}

}  // namespace

int main() {
  for (int64_t n : {int64_t{1}, int64_t{255}, int64_t{256}, int64_t{257}, int64_t{65537},
                    int64_t{132} * 16 * 256 + 1}) {
    test_grid_stride(n);
    test_philox_blocks(n);
  }
  test_philox_blocks(3);
  test_philox_blocks(6);
  for (int64_t sample_numel : {int64_t{4}, int64_t{1024}, int64_t{4} * 70000}) {
    for (int64_t samples : {int64_t{1}, int64_t{3}, int64_t{16}, int64_t{70000}}) {
      if (sample_numel * samples <= (int64_t{1} << 26)) test_gaussian_blocked(sample_numel, samples);
    }
  }
  // Rows of 1, 2, 64 | 65, 1024 | 1025 and 150k categories; row counts that leave groups idle,
  // straddle blocks, or exceed the grid (so the walk strides).
  for (int64_t C : {int64_t{1}, int64_t{2}, int64_t{10}, int64_t{64}, int64_t{65}, int64_t{1024},
                    int64_t{1025}, int64_t{150000}}) {
    for (int64_t rows : {int64_t{1}, int64_t{7}, int64_t{63}, int64_t{65}, int64_t{4097},
                         int64_t{40000}}) {
      if (rows * C <= (int64_t{1} << 26)) test_rows(rows, C);
    }
  }
  test_offsets_past_2_31();
  return gradext::testing::finish();
}

// Row-wise building blocks of the CUDA kernels that reduce along rows (gumbel_softmax,
// categorical_sample): the noise of 4 consecutive columns, the online (max, argmax, sum of exp)
// statistic, the walk of a group of threads over rows, and a reduction over such a group (a
// quarter-warp, a warp, or a block through shared memory).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "common/philox.h"
#include "common/random_transforms.h"
#include "common/scalar_math.h"
#include "ops/cuda/launch.cuh"

namespace gradext::cuda {

// The 32-bit words of the 4 consecutive elements base .. base + 3 (any alignment).
__device__ __forceinline__ void philox_words4(const PhiloxStream& s, uint64_t base,
                                              uint32_t out[4]) {
  const Philox4x32 a = s.block(base >> 2);
  const int lead = static_cast<int>(base & 3);
  if (lead == 0) {
    out[0] = a.x, out[1] = a.y, out[2] = a.z, out[3] = a.w;
    return;
  }
  const Philox4x32 b = s.block((base >> 2) + 1);
  const uint32_t w[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const int k = lead + j;  // 1 .. 6: a select chain keeps w in registers
    out[j] = k == 1 ? w[1] : k == 2 ? w[2] : k == 3 ? w[3] : k == 4 ? w[4] : k == 5 ? w[5] : w[6];
  }
}

// s = logits + g for the 4 columns c0 .. c0 + 3 of a row starting at flat index row_start;
// columns past the row's end (C) are left unset. Both passes of the forward call it, so the
// noise of pass 2 is exactly that of pass 1.
template <typename scalar_t, typename opmath_t>
__device__ __forceinline__ void row_scores(const PhiloxStream& stream, const scalar_t* x,
                                           int64_t row_start, int64_t c0, int64_t C,
                                           opmath_t s[4]) {
  uint32_t words[4];
  philox_words4(stream, static_cast<uint64_t>(row_start + c0), words);
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    if (c0 + j < C) s[j] = static_cast<opmath_t>(x[c0 + j]) + gumbel<opmath_t>(words[j]);
  }
}

template <typename T>
struct RowStat {  // running maximum of s = logits + g, its first index, sum of exp((s - max) / tau)
  T max;
  int64_t index;
  T sum;
};

template <typename T>
__device__ __forceinline__ RowStat<T> combine(RowStat<T> a, RowStat<T> b, T inv_tau) {
  const bool b_wins = b.max > a.max || (b.max == a.max && b.index < a.index);
  const RowStat<T>& w = b_wins ? b : a;
  const T ta = a.sum == T(0) ? T(0) : a.sum * math::exp((a.max - w.max) * inv_tau);
  const T tb = b.sum == T(0) ? T(0) : b.sum * math::exp((b.max - w.max) * inv_tau);
  return RowStat<T>{w.max, w.index, ta + tb};
}

template <typename T>
__device__ __forceinline__ void accumulate(RowStat<T>& st, T s, int64_t index, T inv_tau) {
  if (s == -INFINITY) return;  // masked category: probability 0, never the argmax
  if (s > st.max) {
    st.sum = st.sum == T(0) ? T(0) : st.sum * math::exp((st.max - s) * inv_tau);
    st.max = s;
    st.index = index;
  }
  st.sum += math::exp((s - st.max) * inv_tau);
}

template <typename T>
__device__ __forceinline__ T shfl_xor(T v, int mask) {
  return __shfl_xor_sync(0xffffffffu, v, mask);
}

// Reduces within the group of kGroup threads (aligned lanes of a warp, a warp, or a block
// through shared memory). Every thread of the warp (block) must call it: see RowWalk.
template <int kGroup, typename T, typename Combine>
__device__ __forceinline__ T group_reduce(T v, Combine op, T* shared) {
  constexpr int kFirstMask = (kGroup < kWarp ? kGroup : kWarp) / 2;
#pragma unroll
  for (int mask = kFirstMask; mask > 0; mask /= 2) v = op(v, shfl_xor(v, mask));
  if constexpr (kGroup > kWarp) {
    const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
    __syncthreads();  // shared may still be read from a previous reduction
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    v = shared[0];
    for (int k = 1; k < kGroup / kWarp; ++k) v = op(v, shared[k]);
  }
  return v;
}

template <typename T>
__device__ __forceinline__ RowStat<T> shfl_xor(RowStat<T> v, int mask) {
  return RowStat<T>{shfl_xor(v.max, mask), shfl_xor(v.index, mask), shfl_xor(v.sum, mask)};
}

// Launches a row-wise kernel over `items` rows of C columns with the shape row_launch picks
// (launch_map.h). Calls launch(std::integral_constant<int, group>, blocks, threads).
template <typename Launch>
void launch_by_row_length(int64_t items, int64_t C, Launch launch) {
  const RowLaunch shape =
      row_launch(items, C, at::cuda::getCurrentDeviceProperties()->multiProcessorCount);
  if (shape.group == kShortRowThreads) {
    launch(std::integral_constant<int, kShortRowThreads>{}, shape.blocks, shape.threads);
  } else if (shape.group == kWarp) {
    launch(std::integral_constant<int, kWarp>{}, shape.blocks, shape.threads);
  } else {
    launch(std::integral_constant<int, kRowBlockThreads>{}, shape.blocks, shape.threads);
  }
}

}  // namespace gradext::cuda

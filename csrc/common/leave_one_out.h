// Per-datapoint math of the leave-one-out score-function estimators (RLOO and VIMCO), written
// once for the CPU and CUDA kernels. Each datapoint has K >= 2 samples; the kernels stream the
// samples in order k = 0 .. K-1 through an accumulator, then make a pass that writes one
// gradient per sample (RLOO: in the backward, after a pass for the mean; VIMCO: the forward
// keeps the accumulator's 5 scalars for it). Everything is O(K) per datapoint.
//
// VIMCO (Mnih and Rezende 2016) with log weights x_k:
//   L      = logsumexp(x) - log K
//   L_{-k} = L with x_k replaced by mean_{-k} = (sum_j x_j - x_k) / (K - 1)
//   signal_k = L - L_{-k}  (the learning signal of log q(z_k))
// Relative to the maximum m1, with w_k = exp(x_k - m1) and S1 = sum_k w_k in [1, K]:
//   signal_k = log(S1) - log(S1 - w_k + exp(mean_{-k} - m1))      (k not the argmax)
// For k not the argmax, S1 - w_k >= 1 (the argmax term stays), so the subtraction cannot cancel.
// For the argmax i1, S1 - w_{i1} can cancel completely (its weight may dwarf all others, e.g. at
// log weights of +-1e4), so its L_{-k} is computed relative to the second largest x, m2, from
// S2 = sum_{j != i1} exp(x_j - m2) >= 1, which the accumulator keeps directly:
//   signal_{i1} = (m1 - m2) + log(S1) - log(S2 + exp(mean_{-i1} - m2))
// mean_{-k} <= m1 always and mean_{-i1} <= m2, so no exp here can overflow.
//
// The leave-one-out means enter only as mean_{-k} - m1 = sum_{j != k} (x_j - m1) / (K - 1) (and
// mean_{-i1} - m2 likewise), which the backward sums in a first pass over the samples relative
// to m1 and m2 with compensated (TwoSum) arithmetic, and from which it removes x_k's own term
// exactly. "sum_j x_j - x_k" in plain arithmetic loses everything at the range edges: equal log
// weights of 1e10 have a sum whose rounding error exceeds e^80, and a log weight of -1e8 absorbs
// the others. Edges, as torch.logsumexp and the definition give them:
//   * x_k = -inf (a sample of weight 0) joins no sum; mean_{-j} is -inf for every other j;
//   * every x_k = -inf: L = -inf, and the gradients are NaN (softmax of nothing, as torch's);
//   * one finite x (m2 = -inf): its signal is +inf (L_{-i1} = -inf);
//   * a NaN or +inf log weight: L is NaN or +inf and every signal NaN; the weights' gradient is
//     torch.logsumexp's (all NaN, or NaN at the +inf entry and 0 elsewhere).
#pragma once

#include <cmath>
#include <cstdint>

#include "macros.h"
#include "scalar_math.h"

namespace gradext {

// x + y = *sum + *error exactly (Knuth's TwoSum), for round-to-nearest arithmetic without
// contraction into FMAs (both builds compile with contraction off).
template <typename T>
GRADEXT_INLINE void two_sum(T x, T y, T* sum, T* error) {
  const T s = x + y;
  const T y_part = s - x;
  *error = (x - (s - y_part)) + (y - y_part);
  *sum = s;
}

// NaN if x is NaN, +inf if x is +inf, else 0: what a log weight adds to the datapoint's poison.
template <typename T>
GRADEXT_INLINE T poison_of(T x) {
  return x != x || x == static_cast<T>(INFINITY) ? x : T(0);
}

// What the gradients of a datapoint add, given its poison: every signal is NaN when a log weight
// is NaN or +inf; the softmax weights are NaN when one is NaN, and with a +inf log weight they
// are torch.logsumexp's (NaN at the +inf entry, 0 elsewhere), which exp(x - m1) gives by itself.
template <typename T>
GRADEXT_INLINE T signal_poison(T poison) { return poison * T(0); }
template <typename T>
GRADEXT_INLINE T weight_poison(T poison) { return poison == poison ? T(0) : poison; }

// Running top-2 statistics of a stream of log weights.
template <typename T>
struct TopTwoLogSumExp {
  T m1;       // largest value so far
  int32_t i1;  // its first index (K < 2^31 is checked on the host)
  T m2;       // largest of the others (-inf while there are none)
  T s2;       // sum over the others of exp(x - m2)
  T poison;   // 0, or NaN / +inf when a log weight was NaN / +inf (the comparisons skip NaN)

  GRADEXT_INLINE static TopTwoLogSumExp start(T x0) {
    return TopTwoLogSumExp{x0, 0, -static_cast<T>(INFINITY), T(0), poison_of(x0)};
  }

  // Adds x_k for k >= 1. The value joining "the others" is min(x, m1): x itself, or the previous
  // maximum when x takes its place. One exp per value: exp(-|d|) rescales whichever side is
  // smaller. Values of -inf join with weight 0.
  GRADEXT_INLINE void push(T x, int32_t k) {
    const T joining = x < m1 ? x : m1;
    const bool new_max = x > m1;
    i1 = new_max ? k : i1;
    m1 = new_max ? x : m1;
    const T d = joining - m2;
    const T ad = d < T(0) ? -d : d;
    const T e = joining == -static_cast<T>(INFINITY) ? T(0) : math::exp(-ad);
    s2 = d > T(0) ? s2 * e + T(1) : s2 + e;
    m2 = d > T(0) ? joining : m2;
    poison += poison_of(x);
  }

  // S1 = sum_k exp(x_k - m1), in [1, K].
  GRADEXT_INLINE T s1() const { return T(1) + s2 * math::exp(m2 - m1); }

  // L = log(sum_k exp(x_k)) - log K: -inf when every x_k is, NaN / +inf with a NaN / +inf x_k.
  GRADEXT_INLINE T bound(T log_k) const {
    const T finite_max = m1 + math::log(s1()) - log_k;
    return (m1 == -static_cast<T>(INFINITY) ? m1 : finite_max) + poison;
  }
};

// sum_j (x_j - pivot) over the finite x_j not skipped, compensated (hi + lo: the rounding of
// each difference and of each partial sum is carried in lo), and how many x_j were -inf.
template <typename T>
struct PivotedSum {
  T hi;
  T lo;
  int32_t minus_inf;

  GRADEXT_INLINE static PivotedSum start() { return PivotedSum{T(0), T(0), 0}; }

  GRADEXT_INLINE void add(T x, T pivot, bool skip) {
    const bool masked = x == -static_cast<T>(INFINITY);
    minus_inf += (!skip && masked) ? 1 : 0;
    T d, d_error, s, s_error;
    two_sum(skip || masked ? pivot : x, -pivot, &d, &d_error);  // 0 for what is left out
    two_sum(hi, d, &s, &s_error);
    hi = s;
    lo += s_error + d_error;
  }

  GRADEXT_INLINE T total() const { return hi + lo; }

  // The sum without x's own term (x finite and counted): x - pivot removed exactly.
  GRADEXT_INLINE T without(T x, T pivot) const {
    T d, d_error, s, s_error;
    two_sum(x, -pivot, &d, &d_error);
    two_sum(hi, -d, &s, &s_error);
    return s + ((s_error + lo) - d_error);
  }
};

// The backward's first pass over a datapoint's samples: the sums behind mean_{-k} - m1 (every
// sample) and mean_{-i1} - m2 (the argmax's, without x_{i1}).
template <typename T>
struct LeaveOneOutSums {
  PivotedSum<T> around_max;     // relative to m1, over every sample
  PivotedSum<T> around_second;  // relative to m2, over every sample but i1

  GRADEXT_INLINE static LeaveOneOutSums start() {
    return LeaveOneOutSums{PivotedSum<T>::start(), PivotedSum<T>::start()};
  }
  GRADEXT_INLINE void add(T x, int32_t k, T m1, T m2, int32_t i1) {
    around_max.add(x, m1, false);
    around_second.add(x, m2, k == i1);
  }
};

// What the forward saves per datapoint for the backward: the top-two statistics as
// kVimcoStatsRows values of T, row j of a [kVimcoStatsRows, datapoints] tensor. The argmax index
// (< 2^31) is stored in two halves of 16 bits, each exact in every math type.
enum VimcoStatsRow : int64_t {
  kStatM1, kStatM2, kStatS2, kStatPoison, kStatI1High, kStatI1Low, kVimcoStatsRows
};

template <typename T>
GRADEXT_INLINE T index_high(int32_t i) { return static_cast<T>(i >> 16); }
template <typename T>
GRADEXT_INLINE T index_low(int32_t i) { return static_cast<T>(i & 0xffff); }
template <typename T>
GRADEXT_INLINE int32_t index_of(T high, T low) {
  return (static_cast<int32_t>(high) << 16) | static_cast<int32_t>(low);
}

template <typename T>
GRADEXT_INLINE void store_vimco_stats(const TopTwoLogSumExp<T>& st, T* stats, int64_t datapoints,
                                      int64_t p) {
  stats[kStatM1 * datapoints + p] = st.m1;
  stats[kStatM2 * datapoints + p] = st.m2;
  stats[kStatS2 * datapoints + p] = st.s2;
  stats[kStatPoison * datapoints + p] = st.poison;
  stats[kStatI1High * datapoints + p] = index_high<T>(st.i1);
  stats[kStatI1Low * datapoints + p] = index_low<T>(st.i1);
}

template <typename T>
GRADEXT_INLINE TopTwoLogSumExp<T> load_vimco_stats(const T* stats, int64_t datapoints, int64_t p) {
  return TopTwoLogSumExp<T>{
      stats[kStatM1 * datapoints + p],
      index_of(stats[kStatI1High * datapoints + p], stats[kStatI1Low * datapoints + p]),
      stats[kStatM2 * datapoints + p], stats[kStatS2 * datapoints + p],
      stats[kStatPoison * datapoints + p]};
}

// What VIMCO's second pass needs per datapoint for the samples other than the argmax: a few
// scalars, so that CPU kernels can keep them in one array per field.
template <typename T>
struct VimcoSignals {
  T m1;      // the largest log weight
  T s1;      // sum_k exp(x_k - m1), in [1, K]
  T log_s1;
  T inv_s1;
  PivotedSum<T> others;  // sum_j (x_j - m1) over the finite x_j, and how many are -inf
  T inv_k_minus_1;

  GRADEXT_INLINE static VimcoSignals from(const TopTwoLogSumExp<T>& st,
                                          const LeaveOneOutSums<T>& sums, int64_t K) {
    const T s1 = st.s1();
    return VimcoSignals{st.m1, s1, math::log(s1), T(1) / s1, sums.around_max,
                        T(1) / static_cast<T>(K - 1)};
  }

  // exp(x_k - m1): the sample's relative weight; softmax(x)_k = weight * inv_s1.
  GRADEXT_INLINE T weight(T x) const { return math::exp(x - m1); }

  // signal_k for k != i1, given w = weight(x_k): log(S1) - log(D), D = S1 - w + w~ >= 1 with
  // w~ = exp(mean_{-k} - m1). One log and no division per sample.
  GRADEXT_INLINE T signal_not_argmax(T x, T w) const { return signal_from(w, weight_of_mean(x)); }

  // The two halves of signal_not_argmax, for CPU loops that keep one transcendental per loop
  // body (shorter dependency chains that the out-of-order core can overlap):
  // w~ = exp(mean_{-k} - m1) (0 when another x_j is -inf), then log(S1) - log(S1 - w + w~).
  GRADEXT_INLINE T weight_of_mean(T x) const {
    const bool masked = x == -static_cast<T>(INFINITY);
    const int32_t others_masked = others.minus_inf - (masked ? 1 : 0);
    const T sum = masked ? others.total() : others.without(x, m1);
    return others_masked > 0 ? T(0) : math::exp(sum * inv_k_minus_1);
  }
  GRADEXT_INLINE T signal_from(T w, T w_tilde) const {
    return log_s1 - math::log((s1 - w) + w_tilde);
  }
};

// signal_{i1}, for the sample with the largest log weight (x_{i1} = m1), relative to m2.
template <typename T>
GRADEXT_INLINE T vimco_signal_argmax(const TopTwoLogSumExp<T>& st, const LeaveOneOutSums<T>& sums,
                                     const VimcoSignals<T>& r) {
  const PivotedSum<T>& b = sums.around_second;
  const T w_tilde = b.minus_inf > 0 ? T(0) : math::exp(b.total() * r.inv_k_minus_1);
  const T signal = (st.m1 - st.m2) + r.log_s1 - math::log(st.s2 + w_tilde);
  // Only one finite log weight: L_{-i1} = -inf, so +inf; no finite one at all (m1 - m1 = NaN
  // when m1 = -inf): NaN, like every other signal of that datapoint.
  const T only_finite = static_cast<T>(INFINITY) + (st.m1 - st.m1);
  return st.m2 == -static_cast<T>(INFINITY) ? only_finite : signal;
}

}  // namespace gradext

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
#pragma once

#include <cmath>
#include <cstdint>

#include "macros.h"
#include "scalar_math.h"

namespace gradext {

// Running top-2 statistics of a stream of log weights.
template <typename T>
struct TopTwoLogSumExp {
  T m1;       // largest value so far
  int32_t i1;  // its first index (K < 2^31 is checked on the host)
  T m2;       // largest of the others (-inf while there are none)
  T s2;       // sum over the others of exp(x - m2)
  T sum;      // sum of all values (for the leave-one-out means)

  GRADEXT_INLINE static TopTwoLogSumExp start(T x0) {
    return TopTwoLogSumExp{x0, 0, -static_cast<T>(INFINITY), T(0), x0};
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
    sum += x;
  }

  // S1 = sum_k exp(x_k - m1), in [1, K].
  GRADEXT_INLINE T s1() const { return T(1) + s2 * math::exp(m2 - m1); }

  // L = log(sum_k exp(x_k)) - log K.
  GRADEXT_INLINE T bound(T log_k) const { return m1 + math::log_positive(s1()) - log_k; }
};

// What the forward saves per datapoint for the backward, so that the backward is one pass: the
// top-two statistics as kVimcoStatsRows values of T (the index exact in T: K <= 2^24 is checked
// on the host), row j of a [kVimcoStatsRows, datapoints] tensor.
enum VimcoStatsRow : int64_t { kStatM1, kStatM2, kStatS2, kStatSum, kStatI1, kVimcoStatsRows };

template <typename T>
GRADEXT_INLINE void store_vimco_stats(const TopTwoLogSumExp<T>& st, T* stats, int64_t datapoints,
                                      int64_t p) {
  stats[kStatM1 * datapoints + p] = st.m1;
  stats[kStatM2 * datapoints + p] = st.m2;
  stats[kStatS2 * datapoints + p] = st.s2;
  stats[kStatSum * datapoints + p] = st.sum;
  stats[kStatI1 * datapoints + p] = static_cast<T>(st.i1);
}

template <typename T>
GRADEXT_INLINE TopTwoLogSumExp<T> load_vimco_stats(const T* stats, int64_t datapoints, int64_t p) {
  return TopTwoLogSumExp<T>{stats[kStatM1 * datapoints + p],
                            static_cast<int32_t>(stats[kStatI1 * datapoints + p]),
                            stats[kStatM2 * datapoints + p], stats[kStatS2 * datapoints + p],
                            stats[kStatSum * datapoints + p]};
}

// What VIMCO's second pass needs per datapoint for the samples other than the argmax: a few
// scalars, so that CPU kernels can keep them in one array per field.
template <typename T>
struct VimcoSignals {
  T m1;      // the largest log weight
  T s1;      // sum_k exp(x_k - m1), in [1, K]
  T log_s1;
  T inv_s1;
  T sum;     // sum_k x_k
  T inv_k_minus_1;

  GRADEXT_INLINE static VimcoSignals from(const TopTwoLogSumExp<T>& st, int64_t K) {
    const T s1 = st.s1();
    return VimcoSignals{st.m1, s1, math::log_positive(s1), T(1) / s1, st.sum,
                        T(1) / static_cast<T>(K - 1)};
  }

  // exp(x_k - m1): the sample's relative weight; softmax(x)_k = weight * inv_s1.
  GRADEXT_INLINE T weight(T x) const { return math::exp(x - m1); }

  // signal_k for k != i1, given w = weight(x_k): log(S1) - log(D), D = S1 - w + w~ >= 1 with
  // w~ = exp(mean_{-k} - m1). One log and no division per sample; the absolute error is a few
  // ulps of log K, below the inputs' own rounding.
  GRADEXT_INLINE T signal_not_argmax(T x, T w) const { return signal_from(w, weight_of_mean(x)); }

  // The two halves of signal_not_argmax, for CPU loops that keep one transcendental per loop
  // body (shorter dependency chains that the out-of-order core can overlap):
  // w~ = exp(mean_{-k} - m1), then log(S1) - log(S1 - w + w~).
  GRADEXT_INLINE T weight_of_mean(T x) const { return math::exp((sum - x) * inv_k_minus_1 - m1); }
  GRADEXT_INLINE T signal_from(T w, T w_tilde) const {
    return log_s1 - math::log_positive((s1 - w) + w_tilde);
  }
};

// signal_{i1}, for the sample with the largest log weight (x_{i1} = m1), relative to m2.
template <typename T>
GRADEXT_INLINE T vimco_signal_argmax(const TopTwoLogSumExp<T>& st, const VimcoSignals<T>& r) {
  const T mean_others = (st.sum - st.m1) * r.inv_k_minus_1;
  const T rest = st.s2 + math::exp(mean_others - st.m2);
  return (st.m1 - st.m2) + r.log_s1 - math::log_positive(rest);
}

}  // namespace gradext

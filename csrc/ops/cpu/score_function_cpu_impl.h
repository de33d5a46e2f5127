// The CPU kernels of score_function_loo and vimco, compiled once per ISA through per_isa.h (no
// include guard on purpose). Each block streams its datapoints' samples k = 0 .. K-1 (the order
// the CUDA kernels use too), keeping per-datapoint state in one array per field over the block's
// lanes. Every loop over lanes is a plain loop over such arrays (no gathers from structs, no
// calls), which is what lets GCC vectorize the polynomial exp/log inside. Results do not depend
// on the thread count.

// row[l] = sample k of lane l, in opmath.
template <typename scalar_t, typename opmath_t>
GRADEXT_CPU_INLINE void load_lanes(const scalar_t* values, const LaneBlock& b, int64_t k,
                                   opmath_t* __restrict__ row) {
  const scalar_t* p = values + b.first_value + k * b.sample_stride;
  if (b.lane_stride == 1) {
    for (int64_t l = 0; l < b.lanes; ++l) row[l] = static_cast<opmath_t>(p[l]);
  } else {
    for (int64_t l = 0; l < b.lanes; ++l) row[l] = static_cast<opmath_t>(p[l * b.lane_stride]);
  }
}

// Sample k of lane l of `out` (laid out like the values) = row[l].
template <typename scalar_t, typename opmath_t>
GRADEXT_CPU_INLINE void store_lanes(scalar_t* out, const LaneBlock& b, int64_t k,
                                    const opmath_t* __restrict__ row) {
  scalar_t* q = out + b.first_value + k * b.sample_stride;
  if (b.lane_stride == 1) {
    for (int64_t l = 0; l < b.lanes; ++l) q[l] = static_cast<scalar_t>(row[l]);
  } else {
    for (int64_t l = 0; l < b.lanes; ++l) q[l * b.lane_stride] = static_cast<scalar_t>(row[l]);
  }
}

// Sample k of every lane as opmath values. Where the values already are that (float32/float64
// samples at unit lane stride) this is a pointer into the input: no copy (a copy loop would
// also be turned into a memcpy call per row). Otherwise the row is converted or gathered, and
// two-pass kernels keep it in `cache` (K x kSampleLanes opmath values, see sample_cache_size)
// for their second pass; without a cache (very large K) the second pass converts again.
template <typename scalar_t, typename opmath_t>
GRADEXT_CPU_INLINE bool reads_in_place(const LaneBlock& b) {
  return std::is_same_v<scalar_t, opmath_t> && b.lane_stride == 1;
}

template <typename scalar_t, typename opmath_t>
GRADEXT_CPU_INLINE const opmath_t* first_read(const scalar_t* values, const LaneBlock& b,
                                              int64_t k, opmath_t* cache, opmath_t* row) {
  if (reads_in_place<scalar_t, opmath_t>(b)) {
    return reinterpret_cast<const opmath_t*>(values + b.first_value + k * b.sample_stride);
  }
  opmath_t* dst = cache != nullptr ? cache + k * kSampleLanes : row;
  load_lanes(values, b, k, dst);
  return dst;
}

template <typename scalar_t, typename opmath_t>
GRADEXT_CPU_INLINE const opmath_t* second_read(const scalar_t* values, const LaneBlock& b,
                                               int64_t k, opmath_t* cache, opmath_t* row) {
  if (cache != nullptr && !reads_in_place<scalar_t, opmath_t>(b)) return cache + k * kSampleLanes;
  return first_read(values, b, k, static_cast<opmath_t*>(nullptr), row);
}

// Where pass 2 writes sample k's results: straight into `out` when it is laid out in opmath at
// unit lane stride, else into `buffer`, which commit_row then converts or scatters.
template <typename scalar_t, typename opmath_t>
GRADEXT_CPU_INLINE opmath_t* output_row(scalar_t* out, const LaneBlock& b, int64_t k,
                                        opmath_t* buffer) {
  if (reads_in_place<scalar_t, opmath_t>(b)) {
    return reinterpret_cast<opmath_t*>(out + b.first_value + k * b.sample_stride);
  }
  return buffer;
}

template <typename scalar_t, typename opmath_t>
GRADEXT_CPU_INLINE void commit_row(scalar_t* out, const LaneBlock& b, int64_t k,
                                   const opmath_t* buffer) {
  if (!reads_in_place<scalar_t, opmath_t>(b)) store_lanes(out, b, k, buffer);
}

// total[l] = sum over k, in order, of lane l's samples.
template <typename scalar_t, typename opmath_t>
GRADEXT_CPU_INLINE void sum_samples(const scalar_t* values, const SampleBlockArgs& a,
                                    const LaneBlock& b, opmath_t* __restrict__ total,
                                    opmath_t* cache, opmath_t* row) {
  for (int64_t l = 0; l < b.lanes; ++l) total[l] = 0;
  for (int64_t k = 0; k < a.samples; ++k) {
    const opmath_t* r = first_read(values, b, k, cache, row);
    for (int64_t l = 0; l < b.lanes; ++l) total[l] += r[l];
  }
}

// score_function_loo forward: the mean of f over the K samples.
template <typename scalar_t>
void loo_mean_blocks(const SampleBlockArgs& a, int64_t block_begin, int64_t block_end,
                     void* /*cache*/) {
  using opmath_t = at::opmath_type<scalar_t>;
  const auto* f = static_cast<const scalar_t*>(a.values);
  auto* out = static_cast<scalar_t*>(a.out);
  const opmath_t K = static_cast<opmath_t>(a.samples);
  alignas(64) opmath_t total[kSampleLanes], row[kSampleLanes];
  for (int64_t block = block_begin; block < block_end; ++block) {
    const LaneBlock b = lane_block(a, block);
    sum_samples(f, a, b, total, static_cast<opmath_t*>(nullptr), row);
    for (int64_t l = 0; l < b.lanes; ++l) out[b.first_result + l] = static_cast<scalar_t>(total[l] / K);
  }
}

// score_function_loo backward: d log_prob_k = grad * (f_k - mean f) / (K - 1), which equals
// grad * (f_k - b_k) / K with the leave-one-out baseline b_k, without the cancellation of
// sum - f_k.
template <typename scalar_t>
void loo_backward_blocks(const SampleBlockArgs& a, int64_t block_begin, int64_t block_end,
                         void* cache_ptr) {
  using opmath_t = at::opmath_type<scalar_t>;
  const auto* f = static_cast<const scalar_t*>(a.values);
  const auto* grad = static_cast<const scalar_t*>(a.grad);
  auto* out = static_cast<scalar_t*>(a.out);
  const opmath_t K = static_cast<opmath_t>(a.samples);
  const opmath_t K_minus_1 = static_cast<opmath_t>(a.samples - 1);
  auto* cache = static_cast<opmath_t*>(cache_ptr);
  alignas(64) opmath_t mean[kSampleLanes], scale[kSampleLanes], row[kSampleLanes];
  alignas(64) opmath_t out_row[kSampleLanes];
  for (int64_t block = block_begin; block < block_end; ++block) {
    const LaneBlock b = lane_block(a, block);
    sum_samples(f, a, b, mean, cache, row);
    for (int64_t l = 0; l < b.lanes; ++l) {
      mean[l] = mean[l] / K;
      scale[l] = static_cast<opmath_t>(grad[b.first_result + l]) / K_minus_1;
    }
    for (int64_t k = 0; k < a.samples; ++k) {
      const opmath_t* r = second_read(f, b, k, cache, row);
      opmath_t* o = output_row(out, b, k, out_row);
      for (int64_t l = 0; l < b.lanes; ++l) o[l] = (r[l] - mean[l]) * scale[l];
      commit_row(out, b, k, o);
    }
  }
}

// The top-two statistics of every lane of a block (leave_one_out.h), one array per field.
template <typename opmath_t>
struct LaneStats {
  alignas(64) opmath_t m1[kSampleLanes];
  alignas(64) opmath_t m2[kSampleLanes];
  alignas(64) opmath_t s2[kSampleLanes];
  alignas(64) opmath_t poison[kSampleLanes];
  alignas(64) int32_t i1[kSampleLanes];

  GRADEXT_CPU_INLINE TopTwoLogSumExp<opmath_t> at(int64_t l) const {
    return TopTwoLogSumExp<opmath_t>{m1[l], i1[l], m2[l], s2[l], poison[l]};
  }
  GRADEXT_CPU_INLINE void set(int64_t l, const TopTwoLogSumExp<opmath_t>& st) {
    m1[l] = st.m1, i1[l] = st.i1, m2[l] = st.m2, s2[l] = st.s2, poison[l] = st.poison;
  }
};

// vimco forward: one pass of top-two statistics per datapoint; writes L = logsumexp(x) - log K
// and the statistics the backward needs.
template <typename scalar_t>
void vimco_forward_blocks(const SampleBlockArgs& a, int64_t block_begin, int64_t block_end,
                          void* /*cache*/) {
  using opmath_t = at::opmath_type<scalar_t>;
  using Stats = TopTwoLogSumExp<opmath_t>;
  const auto* x = static_cast<const scalar_t*>(a.values);
  auto* out = static_cast<scalar_t*>(a.out);
  auto* stats = static_cast<opmath_t*>(a.stats);
  const int64_t datapoints = a.outer * a.inner;
  const opmath_t log_k = static_cast<opmath_t>(std::log(static_cast<double>(a.samples)));
  alignas(64) opmath_t row[kSampleLanes], bound[kSampleLanes];
  LaneStats<opmath_t> lane;
  for (int64_t block = block_begin; block < block_end; ++block) {
    const LaneBlock b = lane_block(a, block);
    const opmath_t* r0 = first_read(x, b, 0, static_cast<opmath_t*>(nullptr), row);
    for (int64_t l = 0; l < b.lanes; ++l) lane.set(l, Stats::start(r0[l]));
    for (int64_t k = 1; k < a.samples; ++k) {
      const opmath_t* r = first_read(x, b, k, static_cast<opmath_t*>(nullptr), row);
      const int32_t k32 = static_cast<int32_t>(k);
      for (int64_t l = 0; l < b.lanes; ++l) {
        Stats st = lane.at(l);
        st.push(r[l], k32);
        lane.set(l, st);
      }
    }
    // Separate loops: computing and storing through several output pointers in one loop
    // kept GCC from vectorizing the exp and log here.
    for (int64_t l = 0; l < b.lanes; ++l) bound[l] = lane.at(l).bound(log_k);
    for (int64_t l = 0; l < b.lanes; ++l) out[b.first_result + l] = static_cast<scalar_t>(bound[l]);
    // The layout of store_vimco_stats, one field (row) at a time.
    opmath_t* saved = stats + b.first_result;
    for (int64_t l = 0; l < b.lanes; ++l) saved[kStatM1 * datapoints + l] = lane.m1[l];
    for (int64_t l = 0; l < b.lanes; ++l) saved[kStatM2 * datapoints + l] = lane.m2[l];
    for (int64_t l = 0; l < b.lanes; ++l) saved[kStatS2 * datapoints + l] = lane.s2[l];
    for (int64_t l = 0; l < b.lanes; ++l) saved[kStatPoison * datapoints + l] = lane.poison[l];
    for (int64_t l = 0; l < b.lanes; ++l) {
      saved[kStatI1High * datapoints + l] = index_high<opmath_t>(lane.i1[l]);
      saved[kStatI1Low * datapoints + l] = index_low<opmath_t>(lane.i1[l]);
    }
  }
}

// vimco backward from the saved statistics: a first pass over the samples for the
// leave-one-out sums (leave_one_out.h: exact removal of x_k at any finite log weights), then
// d log_weights = grad * softmax and d log_prob = grad * signal with the non-argmax formula for
// every sample, and the argmax sample's signal stored over it. A datapoint with a NaN or +inf
// log weight: signal_poison / weight_poison (leave_one_out.h). Every per-lane quantity is kept
// in its own array and the structs are rebuilt per element, so that GCC vectorizes the loops
// over lanes (an array of structs kept the exp and log scalar: 3x slower).
template <typename scalar_t>
void vimco_backward_blocks(const SampleBlockArgs& a, int64_t block_begin, int64_t block_end,
                           void* /*cache*/) {
  using opmath_t = at::opmath_type<scalar_t>;
  using Stats = TopTwoLogSumExp<opmath_t>;
  using Signals = VimcoSignals<opmath_t>;
  using Sum = PivotedSum<opmath_t>;
  const auto* x = static_cast<const scalar_t*>(a.values);
  const auto* grad = static_cast<const scalar_t*>(a.grad);
  const auto* stats = static_cast<const opmath_t*>(a.stats);
  auto* grad_weights = static_cast<scalar_t*>(a.out);
  auto* grad_log_prob = static_cast<scalar_t*>(a.out2);
  const int64_t datapoints = a.outer * a.inner;
  const opmath_t inv_k_minus_1 = opmath_t(1) / static_cast<opmath_t>(a.samples - 1);
  LaneStats<opmath_t> lane;
  // The two pivoted sums of every lane (LeaveOneOutSums), one array per field.
  alignas(64) opmath_t max_hi[kSampleLanes], max_lo[kSampleLanes];
  alignas(64) opmath_t second_hi[kSampleLanes], second_lo[kSampleLanes];
  alignas(64) int32_t max_minus_inf[kSampleLanes], second_minus_inf[kSampleLanes];
  alignas(64) opmath_t s1[kSampleLanes], log_s1[kSampleLanes], inv_s1[kSampleLanes];
  alignas(64) opmath_t g[kSampleLanes], argmax_grad[kSampleLanes];
  alignas(64) opmath_t poison_signal[kSampleLanes], poison_weight[kSampleLanes];
  alignas(64) opmath_t row[kSampleLanes], w[kSampleLanes], w_tilde[kSampleLanes];
  alignas(64) opmath_t out_row[kSampleLanes];
  auto signals_of = [&](int64_t l) {
    return Signals{lane.m1[l], s1[l], log_s1[l], inv_s1[l],
                   Sum{max_hi[l], max_lo[l], max_minus_inf[l]}, inv_k_minus_1};
  };
  for (int64_t block = block_begin; block < block_end; ++block) {
    const LaneBlock b = lane_block(a, block);
    for (int64_t l = 0; l < b.lanes; ++l) {
      lane.set(l, load_vimco_stats(stats, datapoints, b.first_result + l));
      max_hi[l] = max_lo[l] = second_hi[l] = second_lo[l] = opmath_t(0);
      max_minus_inf[l] = second_minus_inf[l] = 0;
    }
    for (int64_t k = 0; k < a.samples; ++k) {
      const opmath_t* r = first_read(x, b, k, static_cast<opmath_t*>(nullptr), row);
      const int32_t k32 = static_cast<int32_t>(k);
      for (int64_t l = 0; l < b.lanes; ++l) {
        Sum around_max{max_hi[l], max_lo[l], max_minus_inf[l]};
        Sum around_second{second_hi[l], second_lo[l], second_minus_inf[l]};
        around_max.add(r[l], lane.m1[l], false);
        around_second.add(r[l], lane.m2[l], k32 == lane.i1[l]);
        max_hi[l] = around_max.hi, max_lo[l] = around_max.lo, max_minus_inf[l] = around_max.minus_inf;
        second_hi[l] = around_second.hi, second_lo[l] = around_second.lo;
        second_minus_inf[l] = around_second.minus_inf;
      }
    }
    // Per-lane constants, and the argmax sample's gradient.
    for (int64_t l = 0; l < b.lanes; ++l) {
      const Stats st = lane.at(l);
      const LeaveOneOutSums<opmath_t> sums{Sum{max_hi[l], max_lo[l], max_minus_inf[l]},
                                           Sum{second_hi[l], second_lo[l], second_minus_inf[l]}};
      const Signals r = Signals::from(st, sums, a.samples);
      s1[l] = r.s1;
      log_s1[l] = r.log_s1;
      inv_s1[l] = r.inv_s1;
      g[l] = static_cast<opmath_t>(grad[b.first_result + l]);
      poison_signal[l] = signal_poison(st.poison);
      poison_weight[l] = weight_poison(st.poison);
      argmax_grad[l] = g[l] * vimco_signal_argmax(st, sums, r) + poison_signal[l];
    }
    for (int64_t k = 0; k < a.samples; ++k) {
      const opmath_t* r = first_read(x, b, k, static_cast<opmath_t*>(nullptr), row);
      for (int64_t l = 0; l < b.lanes; ++l) w[l] = signals_of(l).weight(r[l]);
      if (grad_weights != nullptr) {
        opmath_t* o = output_row(grad_weights, b, k, out_row);
        for (int64_t l = 0; l < b.lanes; ++l) o[l] = g[l] * (w[l] * inv_s1[l]) + poison_weight[l];
        commit_row(grad_weights, b, k, o);
      }
      if (grad_log_prob != nullptr) {
        // Two loops, one transcendental each (see VimcoSignals::weight_of_mean).
        for (int64_t l = 0; l < b.lanes; ++l) w_tilde[l] = signals_of(l).weight_of_mean(r[l]);
        opmath_t* o = output_row(grad_log_prob, b, k, out_row);
        for (int64_t l = 0; l < b.lanes; ++l) {
          o[l] = g[l] * signals_of(l).signal_from(w[l], w_tilde[l]) + poison_signal[l];
        }
        commit_row(grad_log_prob, b, k, o);
      }
    }
    if (grad_log_prob != nullptr) {
      for (int64_t l = 0; l < b.lanes; ++l) {
        const int64_t at = b.first_value + l * b.lane_stride + lane.i1[l] * b.sample_stride;
        grad_log_prob[at] = static_cast<scalar_t>(argmax_grad[l]);
      }
    }
  }
}

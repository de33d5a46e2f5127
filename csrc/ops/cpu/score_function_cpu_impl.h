// The CPU kernels of score_function_loo and vimco, compiled once per ISA through per_isa.h (no
// include guard on purpose). Each block streams its datapoints' samples k = 0 .. K-1 (the order
// the CUDA kernels use too), keeping per-datapoint state in arrays over the block's lanes;
// results do not depend on the thread count.

// fn(lane, value) for the block's lanes of sample k, with the unit-stride case split out so
// that it vectorizes.
template <typename scalar_t, typename Fn>
GRADEXT_CPU_INLINE void read_lanes(const scalar_t* values, const LaneBlock& b, int64_t k,
                                   Fn fn) {
  using opmath_t = at::opmath_type<scalar_t>;
  const scalar_t* p = values + b.first_value + k * b.sample_stride;
  if (b.lane_stride == 1) {
    for (int64_t l = 0; l < b.lanes; ++l) fn(l, static_cast<opmath_t>(p[l]));
  } else {
    for (int64_t l = 0; l < b.lanes; ++l) fn(l, static_cast<opmath_t>(p[l * b.lane_stride]));
  }
}

// out[lane] = fn(lane, value) for sample k: the per-sample outputs share the values' layout.
template <typename scalar_t, typename Fn>
GRADEXT_CPU_INLINE void map_lanes(const scalar_t* values, scalar_t* out, const LaneBlock& b,
                                  int64_t k, Fn fn) {
  using opmath_t = at::opmath_type<scalar_t>;
  const int64_t at = b.first_value + k * b.sample_stride;
  const scalar_t* p = values + at;
  scalar_t* q = out + at;
  if (b.lane_stride == 1) {
    for (int64_t l = 0; l < b.lanes; ++l) q[l] = static_cast<scalar_t>(fn(l, static_cast<opmath_t>(p[l])));
  } else {
    for (int64_t l = 0; l < b.lanes; ++l) {
      const int64_t j = l * b.lane_stride;
      q[j] = static_cast<scalar_t>(fn(l, static_cast<opmath_t>(p[j])));
    }
  }
}

// Sums over k in order, per lane.
template <typename scalar_t>
GRADEXT_CPU_INLINE void sum_samples(const SampleBlockArgs& a, const LaneBlock& b,
                                    at::opmath_type<scalar_t>* total) {
  const auto* f = static_cast<const scalar_t*>(a.values);
  for (int64_t l = 0; l < b.lanes; ++l) total[l] = 0;
  for (int64_t k = 0; k < a.samples; ++k) {
    read_lanes(f, b, k, [&](int64_t l, auto x) { total[l] += x; });
  }
}

// score_function_loo forward: the mean of f over the K samples.
template <typename scalar_t>
void loo_mean_blocks(const SampleBlockArgs& a, int64_t block_begin, int64_t block_end) {
  using opmath_t = at::opmath_type<scalar_t>;
  auto* out = static_cast<scalar_t*>(a.out);
  const opmath_t K = static_cast<opmath_t>(a.samples);
  alignas(64) opmath_t total[kSampleLanes];
  for (int64_t block = block_begin; block < block_end; ++block) {
    const LaneBlock b = lane_block(a, block);
    sum_samples<scalar_t>(a, b, total);
    for (int64_t l = 0; l < b.lanes; ++l) out[b.first_result + l] = static_cast<scalar_t>(total[l] / K);
  }
}

// score_function_loo backward: d log_prob_k = grad * (f_k - mean f) / (K - 1), which equals
// grad * (f_k - b_k) / K with the leave-one-out baseline b_k, without the cancellation of
// sum - f_k.
template <typename scalar_t>
void loo_backward_blocks(const SampleBlockArgs& a, int64_t block_begin, int64_t block_end) {
  using opmath_t = at::opmath_type<scalar_t>;
  const auto* f = static_cast<const scalar_t*>(a.values);
  const auto* grad = static_cast<const scalar_t*>(a.grad);
  auto* out = static_cast<scalar_t*>(a.out);
  const opmath_t K = static_cast<opmath_t>(a.samples);
  const opmath_t K_minus_1 = static_cast<opmath_t>(a.samples - 1);
  alignas(64) opmath_t mean[kSampleLanes];
  alignas(64) opmath_t scale[kSampleLanes];
  for (int64_t block = block_begin; block < block_end; ++block) {
    const LaneBlock b = lane_block(a, block);
    sum_samples<scalar_t>(a, b, mean);
    for (int64_t l = 0; l < b.lanes; ++l) {
      mean[l] = mean[l] / K;
      scale[l] = static_cast<opmath_t>(grad[b.first_result + l]) / K_minus_1;
    }
    for (int64_t k = 0; k < a.samples; ++k) {
      map_lanes(f, out, b, k, [&](int64_t l, opmath_t x) { return (x - mean[l]) * scale[l]; });
    }
  }
}

// vimco forward: L = logsumexp(x) - log K per datapoint.
template <typename scalar_t>
void vimco_forward_blocks(const SampleBlockArgs& a, int64_t block_begin, int64_t block_end) {
  using opmath_t = at::opmath_type<scalar_t>;
  const auto* x = static_cast<const scalar_t*>(a.values);
  auto* out = static_cast<scalar_t*>(a.out);
  const opmath_t log_k = static_cast<opmath_t>(std::log(static_cast<double>(a.samples)));
  alignas(64) opmath_t m[kSampleLanes];
  alignas(64) opmath_t s[kSampleLanes];
  for (int64_t block = block_begin; block < block_end; ++block) {
    const LaneBlock b = lane_block(a, block);
    read_lanes(x, b, 0, [&](int64_t l, opmath_t v) {
      const auto st = RunningLogSumExp<opmath_t>::start(v);
      m[l] = st.m, s[l] = st.s;
    });
    for (int64_t k = 1; k < a.samples; ++k) {
      read_lanes(x, b, k, [&](int64_t l, opmath_t v) {
        RunningLogSumExp<opmath_t> st{m[l], s[l]};
        st.push(v);
        m[l] = st.m, s[l] = st.s;
      });
    }
    for (int64_t l = 0; l < b.lanes; ++l) {
      out[b.first_result + l] = static_cast<scalar_t>(RunningLogSumExp<opmath_t>{m[l], s[l]}.bound(log_k));
    }
  }
}

// vimco backward. Pass 1 gathers the top-two statistics per datapoint; pass 2 writes
// d log_weights = grad * softmax and d log_prob = grad * signal with the non-argmax formula for
// every sample; a last step rewrites the argmax sample's signal (leave_one_out.h).
template <typename scalar_t>
void vimco_backward_blocks(const SampleBlockArgs& a, int64_t block_begin, int64_t block_end) {
  using opmath_t = at::opmath_type<scalar_t>;
  using Stats = TopTwoLogSumExp<opmath_t>;
  const auto* x = static_cast<const scalar_t*>(a.values);
  const auto* grad = static_cast<const scalar_t*>(a.grad);
  auto* grad_weights = static_cast<scalar_t*>(a.out);
  auto* grad_log_prob = static_cast<scalar_t*>(a.out2);
  alignas(64) opmath_t m1[kSampleLanes], m2[kSampleLanes], s2[kSampleLanes], sum[kSampleLanes];
  alignas(64) int32_t i1[kSampleLanes];
  alignas(64) opmath_t g[kSampleLanes];
  VimcoRow<opmath_t> rows[kSampleLanes];
  for (int64_t block = block_begin; block < block_end; ++block) {
    const LaneBlock b = lane_block(a, block);
    read_lanes(x, b, 0, [&](int64_t l, opmath_t v) {
      const Stats st = Stats::start(v);
      m1[l] = st.m1, i1[l] = st.i1, m2[l] = st.m2, s2[l] = st.s2, sum[l] = st.sum;
    });
    for (int64_t k = 1; k < a.samples; ++k) {
      read_lanes(x, b, k, [&](int64_t l, opmath_t v) {
        Stats st{m1[l], i1[l], m2[l], s2[l], sum[l]};
        st.push(v, static_cast<int32_t>(k));
        m1[l] = st.m1, i1[l] = st.i1, m2[l] = st.m2, s2[l] = st.s2, sum[l] = st.sum;
      });
    }
    for (int64_t l = 0; l < b.lanes; ++l) {
      rows[l] = VimcoRow<opmath_t>::from(Stats{m1[l], i1[l], m2[l], s2[l], sum[l]}, a.samples);
      g[l] = static_cast<opmath_t>(grad[b.first_result + l]);
    }
    for (int64_t k = 0; k < a.samples; ++k) {
      if (grad_weights != nullptr) {
        map_lanes(x, grad_weights, b, k, [&](int64_t l, opmath_t v) {
          return g[l] * (rows[l].weight(v) * rows[l].inv_s1);
        });
      }
      if (grad_log_prob != nullptr) {
        map_lanes(x, grad_log_prob, b, k, [&](int64_t l, opmath_t v) {
          return g[l] * rows[l].signal_not_argmax(v, rows[l].weight(v));
        });
      }
    }
    if (grad_log_prob != nullptr) {
      for (int64_t l = 0; l < b.lanes; ++l) {
        const int64_t at = b.first_value + l * b.lane_stride + rows[l].i1 * b.sample_stride;
        grad_log_prob[at] = static_cast<scalar_t>(g[l] * rows[l].signal_argmax());
      }
    }
  }
}

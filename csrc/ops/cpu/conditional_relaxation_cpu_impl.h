// The CPU kernels of conditional_relaxation, compiled once per ISA through per_isa.h (no include
// guard on purpose). The maths is csrc/common/conditional_relaxation.h's, as on the GPU.
//
// Bernoulli: flat tiles. Categorical: batches of whole rows (a tile's worth, or one longer row)
// whose elementwise work runs as flat loops over the batch, per-row values broadcast to
// per-element arrays, so that rows of a few categories do not spend their time in scalar
// remainder iterations (as gumbel_softmax's rows); per row remain only the reductions. Loops
// evaluate one transcendental each where they can (noise_fill.h says why). Every tile and row
// is handled by one thread in a fixed order: results do not depend on the thread count.

// --- the conditional noises' transforms of whole Philox chunks (noise_fill.h) ---

template <typename opmath_t>
struct OddsBlock {  // r = v / (1 - v) (Bernoulli)
  GRADEXT_CPU_INLINE void operator()(const uint32_t* X, const uint32_t* Y, const uint32_t* Z,
                                     const uint32_t* W, int64_t n, opmath_t* out) const {
    for (int64_t b = 0; b < n; ++b) {
      out[4 * b + 0] = conditional_odds<opmath_t>(X[b]);
      out[4 * b + 1] = conditional_odds<opmath_t>(Y[b]);
      out[4 * b + 2] = conditional_odds<opmath_t>(Z[b]);
      out[4 * b + 3] = conditional_odds<opmath_t>(W[b]);
    }
  }
};

template <typename opmath_t>
struct ExponentialBlock {  // E = -log u (categorical)
  GRADEXT_CPU_INLINE void operator()(const uint32_t* X, const uint32_t* Y, const uint32_t* Z,
                                     const uint32_t* W, int64_t n, opmath_t* out) const {
    for (int64_t b = 0; b < n; ++b) {
      out[4 * b + 0] = exponential<opmath_t>(X[b]);
      out[4 * b + 1] = exponential<opmath_t>(Y[b]);
      out[4 * b + 2] = exponential<opmath_t>(Z[b]);
      out[4 * b + 3] = exponential<opmath_t>(W[b]);
    }
  }
};

// --- Bernoulli ---

template <typename opmath_t>
struct BernoulliNoiseTile {
  alignas(64) opmath_t noise_buffer[kConditionalTile + 8];
  alignas(64) opmath_t cond_buffer[kConditionalTile + 8];
  const opmath_t* noise = nullptr;  // logistic L
  const opmath_t* cond_odds = nullptr;  // r = v / (1 - v)

  GRADEXT_CPU_INLINE void fill(const PhiloxStream& stream, int64_t start, int64_t n) {
    noise = fill_noise(stream, static_cast<uint64_t>(start), n, noise_buffer,
                       LogisticBlock<opmath_t>{});
    cond_odds = fill_noise(stream, kConditionalNoiseFirst + static_cast<uint64_t>(start), n,
                           cond_buffer, OddsBlock<opmath_t>{});
  }
};

template <typename scalar_t>
void bernoulli_conditional_tiles(const ConditionalRelaxationArgs& a, int64_t tile_begin,
                                 int64_t tile_end, void* /*scratch*/) {
  using opmath_t = at::opmath_type<scalar_t>;
  const auto* logits = static_cast<const scalar_t*>(a.logits);
  const int64_t numel = a.categories;
  const opmath_t inv_tau = math::saturated_inv_tau(a.inv_tau, opmath_t(0));
  BernoulliNoiseTile<opmath_t> tile_noise;
  alignas(64) opmath_t z[kConditionalTile];
  alignas(64) opmath_t z_tilde[kConditionalTile];
  for (int64_t tile = tile_begin; tile < tile_end; ++tile) {
    const int64_t start = tile * kConditionalTile;
    const int64_t n = std::min(kConditionalTile, numel - start);
    tile_noise.fill(a.stream, start, n);
    const scalar_t* x = logits + start;
    for (int64_t t = 0; t < n; ++t) {
      const BernoulliConditional<opmath_t> s = bernoulli_conditional(
          static_cast<opmath_t>(x[t]), tile_noise.noise[t], tile_noise.cond_odds[t]);
      z[t] = s.z;
      z_tilde[t] = s.z_tilde;
    }
    auto* b = static_cast<scalar_t*>(a.b) + start;
    auto* soft = static_cast<scalar_t*>(a.soft) + start;
    auto* soft_cond = static_cast<scalar_t*>(a.soft_cond) + start;
    for (int64_t t = 0; t < n; ++t) b[t] = static_cast<scalar_t>(bernoulli_of_score(z[t]));
    for (int64_t t = 0; t < n; ++t) soft[t] = static_cast<scalar_t>(sigmoid(z[t] * inv_tau));
    for (int64_t t = 0; t < n; ++t) {
      soft_cond[t] = static_cast<scalar_t>(sigmoid(z_tilde[t] * inv_tau));
    }
  }
}

// The incoming gradient of a tile in the math type, zero where it is absent.
template <typename scalar_t, typename opmath_t>
GRADEXT_CPU_INLINE void load_grad(const void* grad, int64_t start, int64_t n, opmath_t* out) {
  if (grad == nullptr) {
    for (int64_t t = 0; t < n; ++t) out[t] = opmath_t(0);
    return;
  }
  const scalar_t* g = static_cast<const scalar_t*>(grad) + start;
  for (int64_t t = 0; t < n; ++t) out[t] = static_cast<opmath_t>(g[t]);
}

template <typename scalar_t>
void bernoulli_conditional_backward_tiles(const ConditionalRelaxationArgs& a, int64_t tile_begin,
                                          int64_t tile_end, void* /*scratch*/) {
  using opmath_t = at::opmath_type<scalar_t>;
  const auto* logits = static_cast<const scalar_t*>(a.logits);
  const int64_t numel = a.categories;
  const opmath_t inv_tau = math::saturated_inv_tau(a.inv_tau, opmath_t(0));
  BernoulliNoiseTile<opmath_t> tile_noise;
  alignas(64) opmath_t grad_soft[kConditionalTile];
  alignas(64) opmath_t grad_cond[kConditionalTile];
  for (int64_t tile = tile_begin; tile < tile_end; ++tile) {
    const int64_t start = tile * kConditionalTile;
    const int64_t n = std::min(kConditionalTile, numel - start);
    tile_noise.fill(a.stream, start, n);
    load_grad<scalar_t>(a.grad_soft, start, n, grad_soft);
    load_grad<scalar_t>(a.grad_soft_cond, start, n, grad_cond);
    const scalar_t* x = logits + start;
    auto* out = static_cast<scalar_t*>(a.grad_logits) + start;
    for (int64_t t = 0; t < n; ++t) {
      out[t] = static_cast<scalar_t>(bernoulli_conditional_grad(
          static_cast<opmath_t>(x[t]), tile_noise.noise[t], tile_noise.cond_odds[t], inv_tau,
          grad_soft[t], grad_cond[t]));
    }
  }
}

// d soft = d soft / d x * v, d soft_cond = d soft_cond / d x * v (diagonal Jacobians).
template <typename scalar_t>
void bernoulli_conditional_jvp_tiles(const ConditionalRelaxationArgs& a, int64_t tile_begin,
                                     int64_t tile_end, void* /*scratch*/) {
  using opmath_t = at::opmath_type<scalar_t>;
  const auto* logits = static_cast<const scalar_t*>(a.logits);
  const int64_t numel = a.categories;
  const opmath_t inv_tau = math::saturated_inv_tau(a.inv_tau, opmath_t(0));
  BernoulliNoiseTile<opmath_t> tile_noise;
  alignas(64) opmath_t tangent[kConditionalTile];
  alignas(64) opmath_t slope_soft[kConditionalTile];
  alignas(64) opmath_t slope_cond[kConditionalTile];
  for (int64_t tile = tile_begin; tile < tile_end; ++tile) {
    const int64_t start = tile * kConditionalTile;
    const int64_t n = std::min(kConditionalTile, numel - start);
    tile_noise.fill(a.stream, start, n);
    load_grad<scalar_t>(a.tangent, start, n, tangent);
    const scalar_t* x = logits + start;
    for (int64_t t = 0; t < n; ++t) {
      const BernoulliSlopes<opmath_t> d = bernoulli_conditional_slopes(
          static_cast<opmath_t>(x[t]), tile_noise.noise[t], tile_noise.cond_odds[t], inv_tau);
      slope_soft[t] = d.soft;
      slope_cond[t] = d.soft_cond;
    }
    auto* soft = static_cast<scalar_t*>(a.soft) + start;
    auto* soft_cond = static_cast<scalar_t*>(a.soft_cond) + start;
    for (int64_t t = 0; t < n; ++t) soft[t] = static_cast<scalar_t>(slope_soft[t] * tangent[t]);
    for (int64_t t = 0; t < n; ++t) {
      soft_cond[t] = static_cast<scalar_t>(slope_cond[t] * tangent[t]);
    }
  }
}

// --- the noise op: both noises of elements [start, start + n) in the math type ---

template <typename scalar_t, typename Transform>
GRADEXT_CPU_INLINE void write_noise_tiles(const ConditionalRelaxationArgs& a, int64_t tile_begin,
                                          int64_t tile_end, Transform transform) {
  using opmath_t = at::opmath_type<scalar_t>;
  const int64_t numel = a.rows * a.categories;
  alignas(64) opmath_t buffer[kConditionalTile + 8];
  for (int64_t tile = tile_begin; tile < tile_end; ++tile) {
    const int64_t start = tile * kConditionalTile;
    const int64_t n = std::min(kConditionalTile, numel - start);
    const opmath_t* noise = fill_noise(a.stream, static_cast<uint64_t>(start), n, buffer, transform);
    std::copy(noise, noise + n, static_cast<opmath_t*>(a.noise) + start);
    const opmath_t* cond = fill_noise(a.stream, kConditionalNoiseFirst + static_cast<uint64_t>(start),
                                      n, buffer, transform);
    std::copy(cond, cond + n, static_cast<opmath_t*>(a.cond_noise) + start);
  }
}

template <typename scalar_t>
void bernoulli_noise_tiles(const ConditionalRelaxationArgs& a, int64_t tile_begin,
                           int64_t tile_end, void* /*scratch*/) {
  write_noise_tiles<scalar_t>(a, tile_begin, tile_end, LogisticBlock<at::opmath_type<scalar_t>>{});
}

template <typename scalar_t>
void categorical_noise_tiles(const ConditionalRelaxationArgs& a, int64_t tile_begin,
                             int64_t tile_end, void* /*scratch*/) {
  write_noise_tiles<scalar_t>(a, tile_begin, tile_end, GumbelBlock<at::opmath_type<scalar_t>>{});
}

// --- categorical ---

// Per-element arrays of a batch of rows (capacity elements each) and per-row results, carved
// from a task's scratch (conditional_scratch_bytes). Names say what an array holds after
// categorical_batch; the backward reuses some once their values are spent.
template <typename opmath_t>
struct CategoricalWork {
  opmath_t* noise;       // Gumbel noise g (fill buffer, capacity + 8)
  opmath_t* cond_noise;  // conditional exponentials E (fill buffer, capacity + 8)
  opmath_t* s_exp;       // exp((s - max s) / tau), s = x + g
  opmath_t* theta;       // softmax(x)
  opmath_t* ratio;       // q = E / (E_b theta)
  opmath_t* d_exp;       // exp(d / tau), d = -log1p(q) the conditional offsets (d_b = 0)
  opmath_t* inv_s_sum;   // 1 / the row's sum of s_exp
  opmath_t* inv_d_sum;   // 1 / the row's sum of d_exp
  opmath_t* cond_exp_b;  // the row's E at its argmax b
  opmath_t* is_b;        // 1 at the row's argmax, else 0
  opmath_t* row_value;   // scratch: a per-row value broadcast
  opmath_t* spare0;      // scratch of the backward
  opmath_t* spare1;
  int64_t* best;         // per row: argmax of s
  bool* valid;           // per row: a softmax exists (invalid_inputs.h)

  GRADEXT_CPU_INLINE CategoricalWork(void* scratch, int64_t capacity) {
    auto* p = static_cast<opmath_t*>(scratch);
    noise = p;
    p += capacity + 8;
    cond_noise = p;
    p += capacity + 8;
    opmath_t** arrays[] = {&s_exp,     &theta,      &ratio, &d_exp,     &inv_s_sum, &inv_d_sum,
                           &cond_exp_b, &is_b,      &row_value, &spare0, &spare1};
    for (opmath_t** a : arrays) {
      *a = p;
      p += capacity;
    }
    best = reinterpret_cast<int64_t*>(p);
    valid = reinterpret_cast<bool*>(best + capacity);
  }
};

// Rows [row0, row0 + batch) of C categories: everything the forward writes and the backward
// differentiates, from the two noises.
template <typename scalar_t, typename opmath_t>
GRADEXT_CPU_INLINE void categorical_batch(const ConditionalRelaxationArgs& a, int64_t row0,
                                          int64_t batch, opmath_t inv_tau,
                                          CategoricalWork<opmath_t>& w) {
  const int64_t C = a.categories;
  const int64_t n = batch * C;
  const int64_t first = row0 * C;
  const scalar_t* x = static_cast<const scalar_t*>(a.logits) + first;
  const opmath_t* g = fill_noise(a.stream, static_cast<uint64_t>(first), n, w.noise,
                                 GumbelBlock<opmath_t>{});
  const opmath_t* e = fill_noise(a.stream, kConditionalNoiseFirst + static_cast<uint64_t>(first),
                                 n, w.cond_noise, ExponentialBlock<opmath_t>{});
  opmath_t* x_max = w.ratio;  // until the ratios are formed
  for (int64_t i = 0; i < n; ++i) w.s_exp[i] = static_cast<opmath_t>(x[i]) + g[i];  // s
  for (int64_t r = 0; r < batch; ++r) {
    opmath_t s_max;
    w.best[r] = first_index_of_max(w.s_exp + r * C, C, &s_max);
    const opmath_t row_x_max = row_max<opmath_t>(x + r * C, C);
    const opmath_t e_b = e[r * C + w.best[r]];
    for (int64_t c = 0; c < C; ++c) {
      w.row_value[r * C + c] = s_max;
      x_max[r * C + c] = row_x_max;
      w.cond_exp_b[r * C + c] = e_b;
      w.is_b[r * C + c] = c == w.best[r] ? opmath_t(1) : opmath_t(0);
    }
  }
  for (int64_t i = 0; i < n; ++i) w.s_exp[i] = math::exp((w.s_exp[i] - w.row_value[i]) * inv_tau);
  for (int64_t i = 0; i < n; ++i) w.theta[i] = math::exp(static_cast<opmath_t>(x[i]) - x_max[i]);
  for (int64_t r = 0; r < batch; ++r) {
    const opmath_t s_sum = sum_fixed_order(w.s_exp + r * C, C);
    const opmath_t x_sum = sum_fixed_order(w.theta + r * C, C);
    w.valid[r] = softmax_row_is_valid(s_sum);
    for (int64_t c = 0; c < C; ++c) {
      w.inv_s_sum[r * C + c] = opmath_t(1) / s_sum;
      w.row_value[r * C + c] = opmath_t(1) / x_sum;
    }
  }
  for (int64_t i = 0; i < n; ++i) w.theta[i] = w.theta[i] * w.row_value[i];
  for (int64_t i = 0; i < n; ++i) w.ratio[i] = conditional_ratio(e[i], w.cond_exp_b[i], w.theta[i]);
  for (int64_t i = 0; i < n; ++i) w.d_exp[i] = conditional_offset(w.ratio[i], w.is_b[i] != 0);
  for (int64_t i = 0; i < n; ++i) w.d_exp[i] = math::exp(w.d_exp[i] * inv_tau);
  for (int64_t r = 0; r < batch; ++r) {
    const opmath_t inv_d_sum = opmath_t(1) / sum_fixed_order(w.d_exp + r * C, C);
    for (int64_t c = 0; c < C; ++c) w.inv_d_sum[r * C + c] = inv_d_sum;
  }
}

// out[i] = the sum over i's row of x, for `batch` rows of C, each row's sum in a fixed order
// broadcast over the row. x may alias out.
template <typename opmath_t>
GRADEXT_CPU_INLINE void row_sums(const opmath_t* x, opmath_t* out, int64_t batch, int64_t C) {
  for (int64_t r = 0; r < batch; ++r) {
    const opmath_t total = sum_fixed_order(x + r * C, C);
    for (int64_t c = 0; c < C; ++c) out[r * C + c] = total;
  }
}

// out[i] = the sum over i's row of a[j] * b[j]: the products first, then row_sums. a or b may
// alias out.
template <typename opmath_t>
GRADEXT_CPU_INLINE void row_dots(const opmath_t* a, const opmath_t* b, opmath_t* out,
                                 int64_t batch, int64_t C) {
  for (int64_t i = 0; i < batch * C; ++i) out[i] = a[i] * b[i];
  row_sums(out, out, batch, C);
}

// What both derivatives of a batch need, in place of what it came from: s_exp -> soft,
// d_exp -> soft_cond, ratio -> the conditional offsets' slopes in log(theta).
template <typename opmath_t>
GRADEXT_CPU_INLINE void categorical_jacobian_factors(CategoricalWork<opmath_t>& w, int64_t n) {
  for (int64_t i = 0; i < n; ++i) w.s_exp[i] = w.s_exp[i] * w.inv_s_sum[i];
  for (int64_t i = 0; i < n; ++i) w.d_exp[i] = w.d_exp[i] * w.inv_d_sum[i];
  for (int64_t i = 0; i < n; ++i) w.ratio[i] = conditional_offset_slope(w.ratio[i], w.is_b[i] != 0);
}

// How many rows of C categories a batch starting at `row` takes.
GRADEXT_CPU_INLINE int64_t categorical_batch_rows(int64_t C, int64_t row, int64_t row_end) {
  return C >= kConditionalTile ? 1 : std::min(row_end - row, kConditionalTile / C);
}

// The batches of rows [row_begin, row_end) of the forward, the backward or the JVP: each
// batch's values drawn from the two noises (categorical_batch), then body(w, row, batch,
// inv_tau) uses them (the derivatives turn them into the Jacobians' factors first).
template <typename scalar_t, typename Body>
GRADEXT_CPU_INLINE void for_each_categorical_batch(const ConditionalRelaxationArgs& a,
                                                   int64_t row_begin, int64_t row_end,
                                                   void* scratch, Body body) {
  using opmath_t = at::opmath_type<scalar_t>;
  const int64_t C = a.categories;
  const opmath_t inv_tau = math::saturated_inv_tau(a.inv_tau, opmath_t(0));
  CategoricalWork<opmath_t> w(scratch, conditional_scratch_capacity(C));
  for (int64_t row = row_begin; row < row_end;) {
    const int64_t batch = categorical_batch_rows(C, row, row_end);
    categorical_batch<scalar_t>(a, row, batch, inv_tau, w);
    body(w, row, batch, inv_tau);
    row += batch;
  }
}

template <typename scalar_t>
void categorical_conditional_rows(const ConditionalRelaxationArgs& a, int64_t row_begin,
                                  int64_t row_end, void* scratch) {
  using opmath_t = at::opmath_type<scalar_t>;
  const int64_t C = a.categories;
  for_each_categorical_batch<scalar_t>(a, row_begin, row_end, scratch, [&](
      CategoricalWork<opmath_t>& w, int64_t row, int64_t batch, opmath_t) {
    const int64_t n = batch * C;
    auto* b = static_cast<scalar_t*>(a.b) + row * C;
    auto* soft = static_cast<scalar_t*>(a.soft) + row * C;
    auto* soft_cond = static_cast<scalar_t*>(a.soft_cond) + row * C;
    for (int64_t i = 0; i < n; ++i) soft[i] = static_cast<scalar_t>(w.s_exp[i] * w.inv_s_sum[i]);
    for (int64_t i = 0; i < n; ++i) {
      soft_cond[i] = static_cast<scalar_t>(w.d_exp[i] * w.inv_d_sum[i]);
    }
    for (int64_t i = 0; i < n; ++i) b[i] = static_cast<scalar_t>(w.is_b[i]);
    // A row with a NaN, a +inf or no finite logit: all three samples NaN (invalid_inputs.h).
    for (int64_t r = 0; r < batch; ++r) {
      if (w.valid[r]) continue;
      for (int64_t c = 0; c < C; ++c) {
        b[r * C + c] = soft[r * C + c] = soft_cond[r * C + c] = quiet_nan<scalar_t>();
      }
    }
  });
}

// grad_x = soft (G_s - <G_s, soft>) / tau + h - theta sum(h), h_c = cond_c (G_c - <G_c, cond>)
// / tau * slope_c: softmax's Jacobian for soft; for soft_cond, softmax's Jacobian in d, d's slope
// in log(theta), and log(theta)'s Jacobian in x (conditional_relaxation.h).
template <typename scalar_t>
void categorical_conditional_backward_rows(const ConditionalRelaxationArgs& a, int64_t row_begin,
                                           int64_t row_end, void* scratch) {
  using opmath_t = at::opmath_type<scalar_t>;
  const int64_t C = a.categories;
  for_each_categorical_batch<scalar_t>(a, row_begin, row_end, scratch, [&](
      CategoricalWork<opmath_t>& w, int64_t row, int64_t batch, opmath_t inv_tau) {
    const int64_t n = batch * C;
    categorical_jacobian_factors(w, n);
    const opmath_t* soft = w.s_exp;
    const opmath_t* cond = w.d_exp;
    const opmath_t* slope = w.ratio;
    // Spent arrays take new values: noise -> G_s, cond_noise -> G_c, spare0/1 -> <G_s, soft>
    // and <G_c, cond>, row_value -> h, cond_exp_b -> sum(h).
    opmath_t* grad_soft = w.noise;
    opmath_t* grad_cond = w.cond_noise;
    load_grad<scalar_t>(a.grad_soft, row * C, n, grad_soft);
    load_grad<scalar_t>(a.grad_soft_cond, row * C, n, grad_cond);
    opmath_t* dot_soft = w.spare0;
    opmath_t* dot_cond = w.spare1;
    row_dots(grad_soft, soft, dot_soft, batch, C);
    row_dots(grad_cond, cond, dot_cond, batch, C);
    opmath_t* h = w.row_value;
    for (int64_t i = 0; i < n; ++i) {
      h[i] = cond[i] * (grad_cond[i] - dot_cond[i]) * inv_tau * slope[i];
    }
    opmath_t* h_sum = w.cond_exp_b;
    row_sums(h, h_sum, batch, C);
    auto* out = static_cast<scalar_t*>(a.grad_logits) + row * C;
    for (int64_t i = 0; i < n; ++i) {
      out[i] = static_cast<scalar_t>(soft[i] * (grad_soft[i] - dot_soft[i]) * inv_tau + h[i] -
                                     w.theta[i] * h_sum[i]);
    }
  });
}

// The Jacobian-vector product of (soft, soft_cond) with a tangent v of the logits:
// soft (v - <v, soft>) / tau, and cond (delta - <delta, cond>) / tau for delta = slope (v -
// <theta, v>), the change of the conditional offsets d.
template <typename scalar_t>
void categorical_conditional_jvp_rows(const ConditionalRelaxationArgs& a, int64_t row_begin,
                                      int64_t row_end, void* scratch) {
  using opmath_t = at::opmath_type<scalar_t>;
  const int64_t C = a.categories;
  for_each_categorical_batch<scalar_t>(a, row_begin, row_end, scratch, [&](
      CategoricalWork<opmath_t>& w, int64_t row, int64_t batch, opmath_t inv_tau) {
    const int64_t n = batch * C;
    categorical_jacobian_factors(w, n);
    const opmath_t* soft = w.s_exp;
    const opmath_t* cond = w.d_exp;
    const opmath_t* slope = w.ratio;
    opmath_t* v = w.noise;
    load_grad<scalar_t>(a.tangent, row * C, n, v);
    opmath_t* dot_soft = w.spare0;
    opmath_t* dot_theta = w.spare1;
    row_dots(v, soft, dot_soft, batch, C);
    row_dots(v, w.theta, dot_theta, batch, C);
    opmath_t* delta = w.row_value;
    for (int64_t i = 0; i < n; ++i) delta[i] = slope[i] * (v[i] - dot_theta[i]);
    opmath_t* dot_cond = w.cond_exp_b;
    row_dots(delta, cond, dot_cond, batch, C);
    auto* out_soft = static_cast<scalar_t*>(a.soft) + row * C;
    auto* out_cond = static_cast<scalar_t*>(a.soft_cond) + row * C;
    for (int64_t i = 0; i < n; ++i) {
      out_soft[i] = static_cast<scalar_t>(soft[i] * (v[i] - dot_soft[i]) * inv_tau);
    }
    for (int64_t i = 0; i < n; ++i) {
      out_cond[i] = static_cast<scalar_t>(cond[i] * (delta[i] - dot_cond[i]) * inv_tau);
    }
  });
}

// The CPU kernels of gumbel_softmax and gumbel_sigmoid, compiled once per ISA through
// per_isa.h (no include guard on purpose). Rows are independent and each row is handled by one
// thread in a fixed order, so results do not depend on the thread count.

// Given s = logits + g of one row in `s`: writes the soft sample softmax(s / tau) to `soft` and,
// when one_hot is not null, the one-hot of argmax(s) there.
template <typename scalar_t, typename opmath_t>
GRADEXT_CPU_INLINE void softmax_row(opmath_t* s, int64_t C, opmath_t inv_tau, scalar_t* soft,
                                    scalar_t* one_hot) {
  // Maximum and its first index (ties go to the lowest index, as torch.argmax). tau > 0, so the
  // argmax of s is the argmax of s / tau.
  opmath_t best;
  const int64_t best_index = first_index_of_max(s, C, &best);
  for (int64_t c = 0; c < C; ++c) s[c] = math::exp((s[c] - best) * inv_tau);
  const opmath_t total = sum_fixed_order(s, C);
  const opmath_t inv_total = opmath_t(1) / total;
  for (int64_t c = 0; c < C; ++c) soft[c] = static_cast<scalar_t>(s[c] * inv_total);
  if (one_hot != nullptr) {
    const bool valid = softmax_row_is_valid(total);
    const scalar_t off = valid ? static_cast<scalar_t>(0) : quiet_nan<scalar_t>();
    for (int64_t c = 0; c < C; ++c) one_hot[c] = off;
    if (valid) one_hot[best_index] = static_cast<scalar_t>(1);
  }
}

// softmax_row for `batch` consecutive rows of C categories held together in s[0 .. batch * C)
// (rows up to a tile long). The same values as softmax_row on each row, but the elementwise
// work (exp, normalization, one-hot) runs as flat loops over all the rows: on short rows
// (2 to a few dozen categories, the discrete latents of VAEs) per-row loops would spend most
// of their time in scalar remainder iterations (a row of 10 is one vector of 8 and two scalar
// polynomial exps) and loop set-up. Per row remain only the reductions (max, argmax, sum).
template <typename scalar_t, typename opmath_t>
GRADEXT_CPU_INLINE void softmax_rows_flat(opmath_t* s, int64_t batch, int64_t C, opmath_t inv_tau,
                                          scalar_t* soft, scalar_t* one_hot) {
  alignas(64) opmath_t per_element[kRelaxedTile];  // the row's max, then 1 / the row's sum
  alignas(64) int64_t best_index[kRelaxedTile];
  bool valid[kRelaxedTile];
  const int64_t n = batch * C;
  for (int64_t r = 0; r < batch; ++r) {
    opmath_t best;
    best_index[r] = first_index_of_max(s + r * C, C, &best);
    for (int64_t c = 0; c < C; ++c) per_element[r * C + c] = best;
  }
  for (int64_t i = 0; i < n; ++i) s[i] = math::exp((s[i] - per_element[i]) * inv_tau);
  for (int64_t r = 0; r < batch; ++r) {
    const opmath_t total = sum_fixed_order(s + r * C, C);
    valid[r] = softmax_row_is_valid(total);
    const opmath_t inv_total = opmath_t(1) / total;
    for (int64_t c = 0; c < C; ++c) per_element[r * C + c] = inv_total;
  }
  for (int64_t i = 0; i < n; ++i) soft[i] = static_cast<scalar_t>(s[i] * per_element[i]);
  if (one_hot != nullptr) {
    for (int64_t i = 0; i < n; ++i) one_hot[i] = static_cast<scalar_t>(0);
    for (int64_t r = 0; r < batch; ++r) {
      if (valid[r]) {
        one_hot[r * C + best_index[r]] = static_cast<scalar_t>(1);
      } else {
        for (int64_t c = 0; c < C; ++c) one_hot[r * C + c] = quiet_nan<scalar_t>();
      }
    }
  }
}

// Rows [row_begin, row_end): s = logits + g; y_soft = softmax(s / tau); hard: one-hot(argmax s).
// Rows up to a tile long share one noise fill (a fill has a fixed cost, which rows of a few
// categories would otherwise pay each) and one flat softmax pass; longer rows are filled tile by
// tile into the scratch row.
template <typename scalar_t>
void gumbel_softmax_rows(const RelaxedForwardArgs& a, int64_t row_begin, int64_t row_end,
                         void* scratch_ptr) {
  using opmath_t = at::opmath_type<scalar_t>;
  const auto* logits = static_cast<const scalar_t*>(a.logits);
  auto* y = static_cast<scalar_t*>(a.y);
  auto* y_soft = static_cast<scalar_t*>(a.y_soft);
  auto* s = static_cast<opmath_t*>(scratch_ptr);
  const int64_t C = a.categories;
  const opmath_t inv_tau = math::saturated_inv_tau(a.inv_tau, opmath_t(0));
  alignas(64) opmath_t noise[kRelaxedTile + 8];
  alignas(64) opmath_t scores[kRelaxedTile];
  for (int64_t row = row_begin; row < row_end;) {
    const int64_t batch = C >= kRelaxedTile ? 1 : std::min(row_end - row, kRelaxedTile / C);
    if (C <= kRelaxedTile) {
      const int64_t n = batch * C;
      const int64_t at = row * C;
      const opmath_t* g = fill_noise(a.stream, static_cast<uint64_t>(at), n, noise,
                                     GumbelBlock<opmath_t>{});
      for (int64_t i = 0; i < n; ++i) scores[i] = static_cast<opmath_t>(logits[at + i]) + g[i];
      softmax_rows_flat(scores, batch, C, inv_tau, (y_soft != nullptr ? y_soft : y) + at,
                        y_soft != nullptr ? y + at : nullptr);
    } else {
      const int64_t at = row * C;
      for (int64_t c0 = 0; c0 < C; c0 += kRelaxedTile) {
        const int64_t n = std::min(kRelaxedTile, C - c0);
        const opmath_t* g = fill_noise(a.stream, static_cast<uint64_t>(at + c0), n, noise,
                                       GumbelBlock<opmath_t>{});
        for (int64_t t = 0; t < n; ++t) s[c0 + t] = static_cast<opmath_t>(logits[at + c0 + t]) + g[t];
      }
      softmax_row(s, C, inv_tau, (y_soft != nullptr ? y_soft : y) + at,
                  y_soft != nullptr ? y + at : nullptr);
    }
    row += batch;
  }
}

// d logits = y * (grad - sum(grad * y)) / tau per row.
template <typename scalar_t>
void gumbel_softmax_backward_rows(const RelaxedBackwardArgs& a, int64_t row_begin,
                                  int64_t row_end, void* scratch_ptr) {
  using opmath_t = at::opmath_type<scalar_t>;
  auto* products = static_cast<opmath_t*>(scratch_ptr);
  const int64_t C = a.categories;
  const opmath_t inv_tau = math::saturated_inv_tau(a.inv_tau, opmath_t(0));
  for (int64_t row = row_begin; row < row_end; ++row) {
    const scalar_t* g = static_cast<const scalar_t*>(a.grad) + row * C;
    const scalar_t* y = static_cast<const scalar_t*>(a.y_soft) + row * C;
    scalar_t* out = static_cast<scalar_t*>(a.grad_logits) + row * C;
    for (int64_t c = 0; c < C; ++c) {
      products[c] = static_cast<opmath_t>(g[c]) * static_cast<opmath_t>(y[c]);
    }
    const opmath_t dot = sum_fixed_order(products, C);
    for (int64_t c = 0; c < C; ++c) {
      const opmath_t yc = static_cast<opmath_t>(y[c]);
      out[c] = static_cast<scalar_t>(yc * (static_cast<opmath_t>(g[c]) - dot) * inv_tau);
    }
  }
}

// Elementwise over tiles of the flat tensor: y_soft = sigmoid((logits + L) / tau);
// hard: 1 where logits + L > 0, else 0.
template <typename scalar_t>
void gumbel_sigmoid_tiles(const RelaxedForwardArgs& a, int64_t tile_begin, int64_t tile_end,
                          void* /*scratch*/) {
  using opmath_t = at::opmath_type<scalar_t>;
  const auto* logits = static_cast<const scalar_t*>(a.logits);
  auto* y = static_cast<scalar_t*>(a.y);
  auto* y_soft = static_cast<scalar_t*>(a.y_soft);
  const int64_t numel = a.rows * a.categories;
  const opmath_t inv_tau = math::saturated_inv_tau(a.inv_tau, opmath_t(0));
  alignas(64) opmath_t noise[kRelaxedTile + 8];
  for (int64_t tile = tile_begin; tile < tile_end; ++tile) {
    const int64_t start = tile * kRelaxedTile;
    const int64_t n = std::min(kRelaxedTile, numel - start);
    const opmath_t* L = fill_noise(a.stream, static_cast<uint64_t>(start), n, noise,
                                   LogisticBlock<opmath_t>{});
    const scalar_t* x = logits + start;
    scalar_t* soft = (y_soft != nullptr ? y_soft : y) + start;
    for (int64_t t = 0; t < n; ++t) {
      const opmath_t v = (static_cast<opmath_t>(x[t]) + L[t]) * inv_tau;
      soft[t] = static_cast<scalar_t>(opmath_t(1) / (opmath_t(1) + math::exp(-v)));
    }
    if (y_soft != nullptr) {
      scalar_t* hard = y + start;
      for (int64_t t = 0; t < n; ++t) {
        hard[t] = static_cast<scalar_t>(bernoulli_of_score(static_cast<opmath_t>(x[t]) + L[t]));
      }
    }
  }
}

template <typename scalar_t>
void gumbel_sigmoid_backward_tiles(const RelaxedBackwardArgs& a, int64_t tile_begin,
                                   int64_t tile_end, void* /*scratch*/) {
  using opmath_t = at::opmath_type<scalar_t>;
  const int64_t numel = a.rows * a.categories;
  const opmath_t inv_tau = math::saturated_inv_tau(a.inv_tau, opmath_t(0));
  for (int64_t tile = tile_begin; tile < tile_end; ++tile) {
    const int64_t start = tile * kRelaxedTile;
    const int64_t n = std::min(kRelaxedTile, numel - start);
    const scalar_t* g = static_cast<const scalar_t*>(a.grad) + start;
    const scalar_t* y = static_cast<const scalar_t*>(a.y_soft) + start;
    scalar_t* out = static_cast<scalar_t*>(a.grad_logits) + start;
    for (int64_t t = 0; t < n; ++t) {
      const opmath_t yt = static_cast<opmath_t>(y[t]);
      out[t] = static_cast<scalar_t>(static_cast<opmath_t>(g[t]) * yt * (opmath_t(1) - yt) *
                                     inv_tau);
    }
  }
}

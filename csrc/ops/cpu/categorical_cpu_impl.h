// The CPU kernels of categorical_sample, compiled once per ISA through per_isa.h (no include
// guard on purpose). Each row or draw is handled by one thread in a fixed order, so results do
// not depend on the thread count.

constexpr int64_t kCategoricalTile = 1024;  // noise values per fill

// log_normalizer[b] = logsumexp(logits[b]) for rows [row_begin, row_end).
template <typename scalar_t>
void categorical_normalizer_rows(const CategoricalForwardArgs& a, int64_t row_begin,
                                 int64_t row_end, void* scratch_ptr) {
  using opmath_t = at::opmath_type<scalar_t>;
  auto* scratch = static_cast<opmath_t*>(scratch_ptr);
  auto* log_normalizer = static_cast<opmath_t*>(a.log_normalizer);
  const int64_t C = a.categories;
  for (int64_t row = row_begin; row < row_end; ++row) {
    const scalar_t* x = static_cast<const scalar_t*>(a.logits) + row * C;
    const opmath_t best = row_exp_shifted(x, C, scratch);
    // NaN for a row with a NaN, a +inf or no finite logit (invalid_inputs.h): math::log keeps a
    // NaN sum NaN, where the noise transforms' log_positive would not.
    log_normalizer[row] = best + math::log(sum_fixed_order(scratch, C));
  }
}

// Draws d = s * rows + b in [draw_begin, draw_end): index = argmax_c(logits[b, c] + g), the
// first index on ties, as torch.argmax; log_prob = logits[b, index] - logsumexp(logits[b]).
// Draws of short rows share one noise fill (as in gumbel_softmax_rows); long rows are filled
// tile by tile under a running argmax.
template <typename scalar_t>
void categorical_draw_rows(const CategoricalForwardArgs& a, int64_t draw_begin, int64_t draw_end,
                           void* /*scratch*/) {
  using opmath_t = at::opmath_type<scalar_t>;
  const auto* logits = static_cast<const scalar_t*>(a.logits);
  const auto* log_normalizer = static_cast<const opmath_t*>(a.log_normalizer);
  auto* log_prob = static_cast<scalar_t*>(a.log_prob);
  const int64_t C = a.categories;
  alignas(64) opmath_t noise[kCategoricalTile + 8], scores[kCategoricalTile];
  for (int64_t draw = draw_begin; draw < draw_end;) {
    const int64_t batch = C >= kCategoricalTile ? 1 : std::min(draw_end - draw, kCategoricalTile / C);
    const opmath_t* g = nullptr;
    if (C < kCategoricalTile) {
      g = fill_noise(a.stream, static_cast<uint64_t>(draw * C), batch * C, noise,
                     GumbelBlock<opmath_t>{});
    }
    for (int64_t r = 0; r < batch; ++r) {
      const int64_t d = draw + r;
      const int64_t row = d % a.rows;
      const scalar_t* x = logits + row * C;
      opmath_t best = -static_cast<opmath_t>(INFINITY);
      int64_t best_index = 0;
      for (int64_t c0 = 0; c0 < C; c0 += kCategoricalTile) {
        const int64_t n = std::min(kCategoricalTile, C - c0);
        const opmath_t* gt = g != nullptr ? g + r * C
                                          : fill_noise(a.stream, static_cast<uint64_t>(d * C + c0),
                                                       n, noise, GumbelBlock<opmath_t>{});
        for (int64_t t = 0; t < n; ++t) scores[t] = static_cast<opmath_t>(x[c0 + t]) + gt[t];
        opmath_t tile_best;
        const int64_t tile_index = first_index_of_max(scores, n, &tile_best);
        if (tile_best > best) {  // strictly: ties stay with the earlier tile
          best = tile_best;
          best_index = c0 + tile_index;
        }
      }
      // A row that defines no distribution: index 0 and a NaN log_prob (invalid_inputs.h).
      const opmath_t lse = log_normalizer[row];
      const bool valid = log_normalizer_is_valid(lse);
      a.index[d] = valid ? best_index : 0;
      log_prob[d] = valid ? static_cast<scalar_t>(static_cast<opmath_t>(x[best_index]) - lse)
                          : quiet_nan<scalar_t>();
    }
    draw += batch;
  }
}

// d logits[b] = sum_s grad[s, b] * (one_hot(index[s, b]) - softmax(logits[b])) for rows
// [row_begin, row_end), accumulated in opmath before one rounding.
template <typename scalar_t>
void categorical_backward_rows(const CategoricalBackwardArgs& a, int64_t row_begin,
                               int64_t row_end, void* scratch_ptr) {
  using opmath_t = at::opmath_type<scalar_t>;
  auto* p = static_cast<opmath_t*>(scratch_ptr);
  const auto* grad = static_cast<const scalar_t*>(a.grad);
  const int64_t C = a.categories;
  for (int64_t row = row_begin; row < row_end; ++row) {
    const scalar_t* x = static_cast<const scalar_t*>(a.logits) + row * C;
    scalar_t* out = static_cast<scalar_t*>(a.grad_logits) + row * C;
    row_exp_shifted(x, C, p);
    opmath_t grad_total = 0;
    for (int64_t s = 0; s < a.samples; ++s) grad_total += static_cast<opmath_t>(grad[s * a.rows + row]);
    const opmath_t factor = -grad_total / sum_fixed_order(p, C);
    for (int64_t c = 0; c < C; ++c) p[c] *= factor;
    for (int64_t s = 0; s < a.samples; ++s) {
      // The op is public (torch.ops.gradext), so an index is checked before it addresses
      // memory: one compare per draw, against a pass over C categories per row.
      const int64_t c = a.index[s * a.rows + row];
      TORCH_CHECK_INDEX(c >= 0 && c < C, "_categorical_sample_backward: index ", c,
                        " is out of range for ", C, " categories");
      p[c] += static_cast<opmath_t>(grad[s * a.rows + row]);
    }
    for (int64_t c = 0; c < C; ++c) out[c] = static_cast<scalar_t>(p[c]);
  }
}

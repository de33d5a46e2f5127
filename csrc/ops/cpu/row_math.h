// Row reductions for the per-ISA CPU kernels (included by per_isa.h inside each ISA namespace;
// no include guard on purpose).

// Sum in a fixed order with 8 partial sums: vectorizable without reassociating across calls.
template <typename opmath_t>
GRADEXT_CPU_INLINE opmath_t sum_fixed_order(const opmath_t* x, int64_t n) {
  opmath_t partial[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t t = 0;
  for (; t + 8 <= n; t += 8) {
    for (int j = 0; j < 8; ++j) partial[j] += x[t + j];
  }
  opmath_t total = 0;
  for (; t < n; ++t) total += x[t];
  for (int j = 0; j < 8; ++j) total += partial[j];
  return total;
}

// Fills scratch[c] = exp(x[c] - max x) for one row of n >= 1 values with at least one finite;
// returns max x. The row's logsumexp is max + log(sum_fixed_order(scratch, n)).
template <typename scalar_t, typename opmath_t>
GRADEXT_CPU_INLINE opmath_t row_exp_shifted(const scalar_t* x, int64_t n, opmath_t* scratch) {
  opmath_t best = static_cast<opmath_t>(x[0]);
  for (int64_t c = 1; c < n; ++c) {
    const opmath_t v = static_cast<opmath_t>(x[c]);
    best = v > best ? v : best;
  }
  for (int64_t c = 0; c < n; ++c) scratch[c] = math::exp(static_cast<opmath_t>(x[c]) - best);
  return best;
}

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

// The largest of x[0 .. n), n >= 1, in opmath. Eight running maxima, so that the loop vectorizes
// (a maximum does not depend on the order it is taken in; a sequential `v > best` scan is one
// compare-and-select chain, several cycles per element). NaN never wins unless x[0] is NaN.
template <typename opmath_t, typename scalar_t>
GRADEXT_CPU_INLINE opmath_t row_max(const scalar_t* x, int64_t n) {
  const opmath_t first = static_cast<opmath_t>(x[0]);
  opmath_t partial[8] = {first, first, first, first, first, first, first, first};
  int64_t t = 0;
  for (; t + 8 <= n; t += 8) {
    for (int j = 0; j < 8; ++j) {
      const opmath_t v = static_cast<opmath_t>(x[t + j]);
      partial[j] = v > partial[j] ? v : partial[j];
    }
  }
  opmath_t best = first;
  for (; t < n; ++t) {
    const opmath_t v = static_cast<opmath_t>(x[t]);
    best = v > best ? v : best;
  }
  for (int j = 0; j < 8; ++j) best = partial[j] > best ? partial[j] : best;
  return best;
}

// argmax of x[0 .. n), 1 <= n < 2^31 (longer rows are refused on the host: ops/row_length.h),
// ties to the lowest index (as torch.argmax): the same index as a sequential `x[c] > best` scan,
// found as the smallest position equal to row_max (a min reduction, which vectorizes; 0 when
// none is, which happens only when x[0] is NaN, as in the scan). Writes the maximum to *max_out.
template <typename opmath_t>
GRADEXT_CPU_INLINE int64_t first_index_of_max(const opmath_t* x, int64_t n, opmath_t* max_out) {
  const opmath_t best = row_max<opmath_t>(x, n);
  const int32_t none = static_cast<int32_t>(n);
  int32_t index = none;
  for (int32_t c = 0; c < none; ++c) {
    const int32_t candidate = x[c] == best ? c : none;
    index = candidate < index ? candidate : index;
  }
  *max_out = best;
  return index < none ? index : 0;
}

// Fills scratch[c] = exp(x[c] - max x) for one row of n >= 1 values with at least one finite;
// returns max x. The row's logsumexp is max + log(sum_fixed_order(scratch, n)).
template <typename scalar_t, typename opmath_t>
GRADEXT_CPU_INLINE opmath_t row_exp_shifted(const scalar_t* x, int64_t n, opmath_t* scratch) {
  const opmath_t best = row_max<opmath_t>(x, n);
  for (int64_t c = 0; c < n; ++c) scratch[c] = math::exp(static_cast<opmath_t>(x[c]) - best);
  return best;
}

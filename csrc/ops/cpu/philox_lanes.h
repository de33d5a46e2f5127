// Philox4x32-10 over many counter blocks at once, one variant per CPU ISA, for the per-ISA CPU
// kernels (included inside their `#pragma GCC target` regions, no include guard on purpose).
//
// Why intrinsics here when everything else is left to the auto-vectorizer: the 32x32->64-bit
// multiply-high. Written as `(uint64_t)a * b`, GCC widens 8 lanes to two vectors of 64-bit
// products and narrows them back with cross-lane permutes (vperm2i128), which cost more than the
// multiplies. Multiplying even and odd lanes separately (vpmuludq) and blending the halves keeps
// every operation inside its 128-bit lane.
//
// philox_blocks(stream, first_block, blocks, X, Y, Z, W): the words of blocks first_block ..
// first_block + blocks - 1 (blocks <= kPhiloxChunk; whole vectors are computed, so up to one
// vector width beyond `blocks` is written too). philox_substream_first_blocks: the first block
// of consecutive elements' sub-streams (philox.h, PhiloxSubstream), for the rejection samplers.
// The results equal PhiloxStream::block() exactly (checked by csrc/tests/test_gaussian_ops.cpp).
// GRADEXT_CPU_ISA_LEVEL (0 portable, 1 AVX2, 2 AVX-512) names the enclosing target: GCC's
// target pragma does not define __AVX2__ and friends in C++.

constexpr int64_t kPhiloxChunk = 64;  // most blocks per call; a multiple of every vector width

#if GRADEXT_CPU_ISA_LEVEL >= 1
// The few vector operations Philox needs, for one register width.
#if GRADEXT_CPU_ISA_LEVEL == 2  // AVX-512 (F, DQ, VL, BW)
struct PhiloxLanes {
  using V = __m512i;
  static constexpr int kLanes = 16;
  static GRADEXT_CPU_INLINE V set1(uint32_t x) { return _mm512_set1_epi32(static_cast<int>(x)); }
  static GRADEXT_CPU_INLINE V lane_index() {
    return _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  }
  static GRADEXT_CPU_INLINE V add(V a, V b) { return _mm512_add_epi32(a, b); }
  static GRADEXT_CPU_INLINE V sub(V a, V b) { return _mm512_sub_epi32(a, b); }
  static GRADEXT_CPU_INLINE V bxor(V a, V b) { return _mm512_xor_si512(a, b); }
  // a ^ b ^ c in one instruction (truth table 0x96).
  static GRADEXT_CPU_INLINE V bxor3(V a, V b, V c) {
    return _mm512_ternarylogic_epi32(a, b, c, 0x96);
  }
  // -1 where a > b as signed 32-bit integers, else 0.
  static GRADEXT_CPU_INLINE V greater(V a, V b) {
    return _mm512_movm_epi32(_mm512_cmpgt_epi32_mask(a, b));
  }
  static GRADEXT_CPU_INLINE void store(uint32_t* p, V v) { _mm512_storeu_si512(p, v); }
};

// 32x32 -> 64-bit products of every lane against a broadcast multiplier, as (hi, lo) halves.
// On Intel's 512-bit units the multiplies and the 64-bit shifts share one port, so the lanes are
// moved with in-lane shuffles (the other port) instead of the shifts of the AVX2 variant: the
// odd lanes to even positions for their products, and each product's halves to their lanes by
// one masked shuffle.
GRADEXT_CPU_INLINE void mulhilo_lanes(__m512i a, __m512i m, __m512i* hi, __m512i* lo) {
  const __m512i even = _mm512_mul_epu32(a, m);  // lanes 0, 2, ...: full 64-bit products
  const __m512i odd = _mm512_mul_epu32(_mm512_shuffle_epi32(a, _MM_PERM_DDBB), m);  // 1, 3, ...
  // hi: the even products' high words moved down into the even lanes, the odd ones' in place.
  *hi = _mm512_mask_shuffle_epi32(odd, 0x5555, even, _MM_PERM_DDBB);
  // lo: the even products' low words in place, the odd ones' moved up into the odd lanes.
  *lo = _mm512_mask_shuffle_epi32(even, 0xAAAA, odd, _MM_PERM_CCAA);
}
#else  // AVX2
struct PhiloxLanes {
  using V = __m256i;
  static constexpr int kLanes = 8;
  static GRADEXT_CPU_INLINE V set1(uint32_t x) { return _mm256_set1_epi32(static_cast<int>(x)); }
  static GRADEXT_CPU_INLINE V lane_index() { return _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7); }
  static GRADEXT_CPU_INLINE V add(V a, V b) { return _mm256_add_epi32(a, b); }
  static GRADEXT_CPU_INLINE V sub(V a, V b) { return _mm256_sub_epi32(a, b); }
  static GRADEXT_CPU_INLINE V bxor(V a, V b) { return _mm256_xor_si256(a, b); }
  static GRADEXT_CPU_INLINE V bxor3(V a, V b, V c) { return bxor(bxor(a, b), c); }
  static GRADEXT_CPU_INLINE V greater(V a, V b) { return _mm256_cmpgt_epi32(a, b); }
  static GRADEXT_CPU_INLINE V mul_even(V a, V b) { return _mm256_mul_epu32(a, b); }
  static GRADEXT_CPU_INLINE V srli64(V a) { return _mm256_srli_epi64(a, 32); }
  static GRADEXT_CPU_INLINE V slli64(V a) { return _mm256_slli_epi64(a, 32); }
  // Even 32-bit lanes from a, odd ones from b.
  static GRADEXT_CPU_INLINE V blend_odd(V a, V b) { return _mm256_blend_epi32(a, b, 0xAA); }
  static GRADEXT_CPU_INLINE void store(uint32_t* p, V v) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v);
  }
};

// 32x32 -> 64-bit products of every lane against a broadcast multiplier, as (hi, lo) halves.
GRADEXT_CPU_INLINE void mulhilo_lanes(PhiloxLanes::V a, PhiloxLanes::V m, PhiloxLanes::V* hi,
                                      PhiloxLanes::V* lo) {
  using L = PhiloxLanes;
  const L::V even = L::mul_even(a, m);            // lanes 0, 2, ...: full 64-bit products
  const L::V odd = L::mul_even(L::srli64(a), m);  // lanes 1, 3, ...
  *hi = L::blend_odd(L::srli64(even), odd);
  *lo = L::blend_odd(even, L::slli64(odd));
}
#endif

// The ten rounds on one vector of counters.
GRADEXT_CPU_INLINE void philox_rounds(PhiloxLanes::V* x, PhiloxLanes::V* y, PhiloxLanes::V* z,
                                      PhiloxLanes::V* w, uint32_t k0, uint32_t k1) {
  using L = PhiloxLanes;
  const L::V m0 = L::set1(detail::kPhiloxM0);
  const L::V m1 = L::set1(detail::kPhiloxM1);
#pragma GCC unroll 10
  for (int round = 0; round < 10; ++round) {
    L::V hi0, lo0, hi1, lo1;
    mulhilo_lanes(*x, m0, &hi0, &lo0);
    mulhilo_lanes(*z, m1, &hi1, &lo1);
    *x = L::bxor3(hi1, *y, L::set1(k0));
    *y = lo1;
    *z = L::bxor3(hi0, *w, L::set1(k1));
    *w = lo0;
    k0 += detail::kPhiloxW0;
    k1 += detail::kPhiloxW1;
  }
}

// (lo, hi) 32-bit halves of base + lane for every lane, the carry included.
GRADEXT_CPU_INLINE void lane_counters(uint64_t base, PhiloxLanes::V* lo, PhiloxLanes::V* hi) {
  using L = PhiloxLanes;
  const L::V sign = L::set1(0x80000000u);
  const L::V base_lo = L::set1(static_cast<uint32_t>(base));
  *lo = L::add(base_lo, L::lane_index());
  // Lanes whose low word wrapped (lo < base_lo, unsigned) carry 1 into the high word. The
  // compare is signed, hence the sign flips; the mask is -1 there, so subtract it.
  const L::V wrapped = L::greater(L::bxor(base_lo, sign), L::bxor(*lo, sign));
  *hi = L::sub(L::set1(static_cast<uint32_t>(base >> 32)), wrapped);
}

GRADEXT_CPU_INLINE void philox_blocks(const PhiloxStream& s, uint64_t first_block, int64_t blocks,
                                      uint32_t* X, uint32_t* Y, uint32_t* Z, uint32_t* W) {
  using L = PhiloxLanes;
  for (int64_t b = 0; b < blocks; b += L::kLanes) {
    L::V x, y;
    lane_counters(first_block + static_cast<uint64_t>(b), &x, &y);
    L::V z = L::set1(s.offset_lo);
    L::V w = L::set1(s.offset_hi);
    philox_rounds(&x, &y, &z, &w, s.key0, s.key1);
    L::store(X + b, x);
    L::store(Y + b, y);
    L::store(Z + b, z);
    L::store(W + b, w);
  }
}

// Block 0 of the sub-streams of elements first_element .. first_element + count - 1 under the
// sub-stream key (PhiloxSubstream): counter (0, 0, element lo, element hi). Whole vectors.
GRADEXT_CPU_INLINE void philox_substream_first_blocks(uint64_t key, uint64_t first_element,
                                                      int64_t count, uint32_t* X, uint32_t* Y,
                                                      uint32_t* Z, uint32_t* W) {
  using L = PhiloxLanes;
  for (int64_t b = 0; b < count; b += L::kLanes) {
    L::V z, w;
    lane_counters(first_element + static_cast<uint64_t>(b), &z, &w);
    L::V x = L::set1(0u);
    L::V y = L::set1(0u);
    philox_rounds(&x, &y, &z, &w, static_cast<uint32_t>(key), static_cast<uint32_t>(key >> 32));
    L::store(X + b, x);
    L::store(Y + b, y);
    L::store(Z + b, z);
    L::store(W + b, w);
  }
}
#else
GRADEXT_CPU_INLINE void philox_blocks(const PhiloxStream& s, uint64_t first_block, int64_t blocks,
                                      uint32_t* X, uint32_t* Y, uint32_t* Z, uint32_t* W) {
  for (int64_t b = 0; b < blocks; ++b) {
    const Philox4x32 r = s.block(first_block + static_cast<uint64_t>(b));
    X[b] = r.x;
    Y[b] = r.y;
    Z[b] = r.z;
    W[b] = r.w;
  }
}

GRADEXT_CPU_INLINE void philox_substream_first_blocks(uint64_t key, uint64_t first_element,
                                                      int64_t count, uint32_t* X, uint32_t* Y,
                                                      uint32_t* Z, uint32_t* W) {
  for (int64_t i = 0; i < count; ++i) {
    const uint64_t e = first_element + static_cast<uint64_t>(i);
    const Philox4x32 r = philox4x32_10(
        Philox4x32{0u, 0u, static_cast<uint32_t>(e), static_cast<uint32_t>(e >> 32)},
        static_cast<uint32_t>(key), static_cast<uint32_t>(key >> 32));
    X[i] = r.x;
    Y[i] = r.y;
    Z[i] = r.z;
    W[i] = r.w;
  }
}
#endif

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
// vector width beyond `blocks` is written too).
// The results equal PhiloxStream::block() exactly (checked by csrc/tests/test_gaussian_ops.cpp).
// GRADEXT_CPU_ISA_LEVEL (0 portable, 1 AVX2, 2 AVX-512) names the enclosing target: GCC's
// target pragma does not define __AVX2__ and friends in C++.

constexpr int64_t kPhiloxChunk = 64;  // most blocks per call; a multiple of every vector width

#if GRADEXT_CPU_ISA_LEVEL == 2  // AVX-512 (F, DQ, VL, BW)
GRADEXT_CPU_INLINE void mulhilo_lanes(__m512i a, __m512i m, __m512i* hi, __m512i* lo) {
  const __m512i even = _mm512_mul_epu32(a, m);
  const __m512i odd = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m);
  *hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 32), odd);
  *lo = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
}

GRADEXT_CPU_INLINE void philox_blocks(const PhiloxStream& s, uint64_t first_block, int64_t blocks,
                                      uint32_t* X, uint32_t* Y, uint32_t* Z, uint32_t* W) {
  constexpr int kLanes = 16;
  const __m512i m0 = _mm512_set1_epi32(static_cast<int>(detail::kPhiloxM0));
  const __m512i m1 = _mm512_set1_epi32(static_cast<int>(detail::kPhiloxM1));
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  for (int64_t b = 0; b < blocks; b += kLanes) {
    const uint64_t base = first_block + static_cast<uint64_t>(b);
    const __m512i base_lo = _mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(base)));
    __m512i x = _mm512_add_epi32(base_lo, lane);
    // Carry into the high word for lanes whose low word wrapped past 2^32.
    const __mmask16 wrapped = _mm512_cmplt_epu32_mask(x, base_lo);
    __m512i y = _mm512_mask_add_epi32(
        _mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(base >> 32))), wrapped,
        _mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(base >> 32))),
        _mm512_set1_epi32(1));
    __m512i z = _mm512_set1_epi32(static_cast<int>(s.offset_lo));
    __m512i w = _mm512_set1_epi32(static_cast<int>(s.offset_hi));
    uint32_t k0 = s.key0, k1 = s.key1;
#pragma GCC unroll 10
    for (int round = 0; round < 10; ++round) {
      __m512i hi0, lo0, hi1, lo1;
      mulhilo_lanes(x, m0, &hi0, &lo0);
      mulhilo_lanes(z, m1, &hi1, &lo1);
      x = _mm512_xor_si512(_mm512_xor_si512(hi1, y), _mm512_set1_epi32(static_cast<int>(k0)));
      y = lo1;
      z = _mm512_xor_si512(_mm512_xor_si512(hi0, w), _mm512_set1_epi32(static_cast<int>(k1)));
      w = lo0;
      k0 += detail::kPhiloxW0;
      k1 += detail::kPhiloxW1;
    }
    _mm512_storeu_si512(X + b, x);
    _mm512_storeu_si512(Y + b, y);
    _mm512_storeu_si512(Z + b, z);
    _mm512_storeu_si512(W + b, w);
  }
}
#elif GRADEXT_CPU_ISA_LEVEL == 1  // AVX2
GRADEXT_CPU_INLINE void mulhilo_lanes(__m256i a, __m256i m, __m256i* hi, __m256i* lo) {
  const __m256i even = _mm256_mul_epu32(a, m);
  const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
  *hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
  *lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
}

GRADEXT_CPU_INLINE void philox_blocks(const PhiloxStream& s, uint64_t first_block, int64_t blocks,
                                      uint32_t* X, uint32_t* Y, uint32_t* Z, uint32_t* W) {
  constexpr int kLanes = 8;
  const __m256i m0 = _mm256_set1_epi32(static_cast<int>(detail::kPhiloxM0));
  const __m256i m1 = _mm256_set1_epi32(static_cast<int>(detail::kPhiloxM1));
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i sign = _mm256_set1_epi32(static_cast<int>(0x80000000u));
  for (int64_t b = 0; b < blocks; b += kLanes) {
    const uint64_t base = first_block + static_cast<uint64_t>(b);
    const __m256i base_lo = _mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(base)));
    __m256i x = _mm256_add_epi32(base_lo, lane);
    // Lanes whose low word wrapped (x < base_lo unsigned) carry 1 into the high word; AVX2 has
    // only signed compares, hence the sign flip. The mask is -1 there, so subtract it.
    const __m256i wrapped =
        _mm256_cmpgt_epi32(_mm256_xor_si256(base_lo, sign), _mm256_xor_si256(x, sign));
    __m256i y = _mm256_sub_epi32(
        _mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(base >> 32))), wrapped);
    __m256i z = _mm256_set1_epi32(static_cast<int>(s.offset_lo));
    __m256i w = _mm256_set1_epi32(static_cast<int>(s.offset_hi));
    uint32_t k0 = s.key0, k1 = s.key1;
#pragma GCC unroll 10
    for (int round = 0; round < 10; ++round) {
      __m256i hi0, lo0, hi1, lo1;
      mulhilo_lanes(x, m0, &hi0, &lo0);
      mulhilo_lanes(z, m1, &hi1, &lo1);
      x = _mm256_xor_si256(_mm256_xor_si256(hi1, y), _mm256_set1_epi32(static_cast<int>(k0)));
      y = lo1;
      z = _mm256_xor_si256(_mm256_xor_si256(hi0, w), _mm256_set1_epi32(static_cast<int>(k1)));
      w = lo0;
      k0 += detail::kPhiloxW0;
      k1 += detail::kPhiloxW1;
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(X + b), x);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(Y + b), y);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(Z + b), z);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(W + b), w);
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
#endif

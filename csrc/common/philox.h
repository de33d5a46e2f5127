// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011),
// written once for host and device. Known-answer vectors are checked in
// csrc/tests/test_random.cpp against the Random123 reference values.
#pragma once

#include <cstdint>

#include "macros.h"

namespace gradext {

struct Philox4x32 {
  uint32_t x, y, z, w;
};

namespace detail {

constexpr uint32_t kPhiloxM0 = 0xD2511F53u;
constexpr uint32_t kPhiloxM1 = 0xCD9E8D57u;
constexpr uint32_t kPhiloxW0 = 0x9E3779B9u;  // golden ratio
constexpr uint32_t kPhiloxW1 = 0xBB67AE85u;  // sqrt(3) - 1

GRADEXT_INLINE uint32_t mulhi32(uint32_t a, uint32_t b) {
#if defined(__CUDA_ARCH__)
  return __umulhi(a, b);
#else
  return static_cast<uint32_t>((static_cast<uint64_t>(a) * b) >> 32);
#endif
}

GRADEXT_INLINE Philox4x32 philox_round(Philox4x32 c, uint32_t k0, uint32_t k1) {
  const uint32_t hi0 = mulhi32(kPhiloxM0, c.x);
  const uint32_t lo0 = kPhiloxM0 * c.x;
  const uint32_t hi1 = mulhi32(kPhiloxM1, c.z);
  const uint32_t lo1 = kPhiloxM1 * c.z;
  return Philox4x32{hi1 ^ c.y ^ k0, lo1, hi0 ^ c.w ^ k1, lo0};
}

}  // namespace detail

// The raw bijection: 4 x 32-bit counter, 2 x 32-bit key -> 4 x 32-bit random words.
GRADEXT_INLINE Philox4x32 philox4x32_10(Philox4x32 ctr, uint32_t k0, uint32_t k1) {
#if defined(__CUDA_ARCH__)
#pragma unroll
#elif defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__)
#pragma GCC unroll 10  // a straight-line body lets GCC vectorize the callers' loops
#endif
  for (int round = 0; round < 10; ++round) {
    ctr = detail::philox_round(ctr, k0, k1);
    k0 += detail::kPhiloxW0;
    k1 += detail::kPhiloxW1;
  }
  return ctr;
}

// gradext's random-number contract: element i of a call with (seed, offset) takes its noise from
// Philox word (i % 4) of counter block (i / 4):
//   counter = (block lo, block hi, offset lo, offset hi), key = seed ^ kGradextKeyDomain.
// The element index walks the low 64 counter bits and the offset selects a disjoint stream in
// the high 64 bits, so two calls with different offsets never share a counter however many
// values they draw. PyTorch's own Philox ops key with the bare seed and put a thread's
// subsequence where we put the offset; the key is XORed with a fixed domain constant
// ("gradext" in ASCII) so that our streams are keyed apart from theirs even when both draw
// from the same generator state.
constexpr uint64_t kGradextKeyDomain = 0x6772616465787400ull;

struct PhiloxStream {
  uint32_t key0, key1;
  uint32_t offset_lo, offset_hi;

  GRADEXT_INLINE static PhiloxStream make(uint64_t seed, uint64_t offset) {
    const uint64_t key = seed ^ kGradextKeyDomain;
    return PhiloxStream{static_cast<uint32_t>(key), static_cast<uint32_t>(key >> 32),
                        static_cast<uint32_t>(offset), static_cast<uint32_t>(offset >> 32)};
  }

  // The four random words of counter block `block` (elements 4*block .. 4*block+3).
  GRADEXT_INLINE Philox4x32 block(uint64_t block_index) const {
    const Philox4x32 ctr{static_cast<uint32_t>(block_index),
                         static_cast<uint32_t>(block_index >> 32), offset_lo, offset_hi};
    return philox4x32_10(ctr, key0, key1);
  }
};

}  // namespace gradext

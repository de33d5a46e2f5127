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

// Sub-streams, for samplers that draw a variable number of words per element (the rejection
// samplers of the implicit family). Element i of a call with (seed, offset) reads counter blocks
// j = 0, 1, 2, ... of its own sequence:
//   counter = (j lo, j hi, i lo, i hi), key = seed ^ kGradextSubstreamDomain ^ mix64(offset).
// Elements never share a block (i is the high counter half, j the low); mix64 is a bijection of
// the 64-bit offset, so calls on one generator state sequence (same seed, distinct offsets) never
// share a key; the domain constant keys these streams apart from the bulk ops' and torch's own
// (a key of theirs is met only at the one offset whose mix64 is the XOR of the two key domains,
// and then with counters of another layout). The result of an element is a pure function of
// (seed, offset, i) however many words it rejects and however the work is split. On CUDA the
// generator's offset then advances by a constant per call, not by the words drawn.
constexpr uint64_t kGradextSubstreamDomain = 0x6772616465787401ull;

// splitmix64's output function (Steele, Lea and Flood 2014): xorshifts and odd multiplications,
// each invertible, so a bijection on 64 bits.
GRADEXT_INLINE uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// One element's words, in order.
class PhiloxSubstream {
 public:
  // The key of every sub-stream of the call (seed, offset).
  GRADEXT_INLINE static uint64_t key(uint64_t seed, uint64_t offset) {
    return seed ^ kGradextSubstreamDomain ^ mix64(offset);
  }

  GRADEXT_INLINE PhiloxSubstream(uint64_t seed, uint64_t offset, uint64_t element) {
    const uint64_t key = PhiloxSubstream::key(seed, offset);
    key0_ = static_cast<uint32_t>(key);
    key1_ = static_cast<uint32_t>(key >> 32);
    element_lo_ = static_cast<uint32_t>(element);
    element_hi_ = static_cast<uint32_t>(element >> 32);
  }

  GRADEXT_INLINE uint32_t next() {
    if (used_ == 4) {
      words_ = philox4x32_10(Philox4x32{static_cast<uint32_t>(block_),
                                        static_cast<uint32_t>(block_ >> 32), element_lo_,
                                        element_hi_},
                             key0_, key1_);
      ++block_;
      used_ = 0;
    }
    switch (used_++) {
      case 0:
        return words_.x;
      case 1:
        return words_.y;
      case 2:
        return words_.z;
      default:
        return words_.w;
    }
  }

 private:
  uint32_t key0_, key1_, element_lo_, element_hi_;
  uint64_t block_ = 0;
  Philox4x32 words_{0, 0, 0, 0};
  int used_ = 4;
};

}  // namespace gradext

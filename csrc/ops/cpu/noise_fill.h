// Tiles of noise for the per-ISA CPU kernels (included by per_isa.h inside each ISA namespace;
// no include guard on purpose): Philox blocks from philox_lanes.h, then a transform of a chunk
// of blocks that the auto-vectorizer turns into straight vector code.
//
// Why the transforms work on whole chunks, one transcendental per loop where they can: a loop
// body holding two dependent polynomial chains (log then sqrt/sincos, or log of a log) is longer
// than the out-of-order window of cores like Zen, so the next iteration's independent work is
// never in flight and the loop runs at the chains' latency. One chain per body keeps several
// iterations in flight. The values are the same either way (same operations, same order).

// buffer[lead + j] = noise of element first + j, j < count; returns buffer + lead. The buffer
// holds count + 8 values (the partial blocks at both ends are generated whole).
template <typename opmath_t, typename ChunkTransform>
GRADEXT_CPU_INLINE const opmath_t* fill_noise(const PhiloxStream& stream, uint64_t first,
                                              int64_t count, opmath_t* buffer,
                                              ChunkTransform transform) {
  const uint64_t first_block = first >> 2;
  const int64_t lead = static_cast<int64_t>(first & 3);
  const int64_t blocks = (lead + count + 3) >> 2;
  alignas(64) uint32_t X[kPhiloxChunk], Y[kPhiloxChunk], Z[kPhiloxChunk], W[kPhiloxChunk];
  for (int64_t chunk = 0; chunk < blocks; chunk += kPhiloxChunk) {
    const int64_t n = std::min(kPhiloxChunk, blocks - chunk);
    philox_blocks(stream, first_block + static_cast<uint64_t>(chunk), n, X, Y, Z, W);
    transform(X, Y, Z, W, n, buffer + 4 * chunk);
  }
  return buffer + lead;
}

// out[4b + j] = transform of word j of block b, b < n.

template <typename opmath_t>
struct NormalBlock {  // two Box-Muller pairs per block, as normal4()
  GRADEXT_CPU_INLINE void operator()(const uint32_t* X, const uint32_t* Y, const uint32_t* Z,
                                     const uint32_t* W, int64_t n, opmath_t* out) const {
    alignas(64) opmath_t radius0[kPhiloxChunk], radius1[kPhiloxChunk];
    for (int64_t b = 0; b < n; ++b) radius0[b] = box_muller_radius<opmath_t>(X[b]);
    for (int64_t b = 0; b < n; ++b) radius1[b] = box_muller_radius<opmath_t>(Z[b]);
    for (int64_t b = 0; b < n; ++b) {
      opmath_t s0, c0, s1, c1;
      box_muller_angle<opmath_t>(Y[b], &s0, &c0);
      box_muller_angle<opmath_t>(W[b], &s1, &c1);
      out[4 * b + 0] = radius0[b] * c0;
      out[4 * b + 1] = radius0[b] * s0;
      out[4 * b + 2] = radius1[b] * c1;
      out[4 * b + 3] = radius1[b] * s1;
    }
  }
};

template <typename opmath_t>
struct GumbelBlock {  // g = -log(e), e = -log(u): the inner logs first, then the outer ones
  GRADEXT_CPU_INLINE void operator()(const uint32_t* X, const uint32_t* Y, const uint32_t* Z,
                                     const uint32_t* W, int64_t n, opmath_t* out) const {
    alignas(64) opmath_t e[4][kPhiloxChunk];
    for (int64_t b = 0; b < n; ++b) e[0][b] = exponential<opmath_t>(X[b]);
    for (int64_t b = 0; b < n; ++b) e[1][b] = exponential<opmath_t>(Y[b]);
    for (int64_t b = 0; b < n; ++b) e[2][b] = exponential<opmath_t>(Z[b]);
    for (int64_t b = 0; b < n; ++b) e[3][b] = exponential<opmath_t>(W[b]);
    for (int64_t b = 0; b < n; ++b) {
      out[4 * b + 0] = gumbel_of_exponential(e[0][b]);
      out[4 * b + 1] = gumbel_of_exponential(e[1][b]);
      out[4 * b + 2] = gumbel_of_exponential(e[2][b]);
      out[4 * b + 3] = gumbel_of_exponential(e[3][b]);
    }
  }
};

template <typename opmath_t>
struct LogisticBlock {
  GRADEXT_CPU_INLINE void operator()(const uint32_t* X, const uint32_t* Y, const uint32_t* Z,
                                     const uint32_t* W, int64_t n, opmath_t* out) const {
    for (int64_t b = 0; b < n; ++b) {
      out[4 * b + 0] = logistic<opmath_t>(X[b]);
      out[4 * b + 1] = logistic<opmath_t>(Y[b]);
      out[4 * b + 2] = logistic<opmath_t>(Z[b]);
      out[4 * b + 3] = logistic<opmath_t>(W[b]);
    }
  }
};

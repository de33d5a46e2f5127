// Tiles of noise for the per-ISA CPU kernels (included by per_isa.h inside each ISA namespace;
// no include guard on purpose): Philox blocks from philox_lanes.h, then a per-block transform
// that the auto-vectorizer turns into straight vector code.

// buffer[lead + j] = noise of element first + j, j < count; returns buffer + lead. The buffer
// holds count + 8 values (the partial blocks at both ends are generated whole).
template <typename opmath_t, typename BlockTransform>
GRADEXT_CPU_INLINE const opmath_t* fill_noise(const PhiloxStream& stream, uint64_t first,
                                              int64_t count, opmath_t* buffer,
                                              BlockTransform transform) {
  const uint64_t first_block = first >> 2;
  const int64_t lead = static_cast<int64_t>(first & 3);
  const int64_t blocks = (lead + count + 3) >> 2;
  alignas(64) uint32_t X[kPhiloxChunk], Y[kPhiloxChunk], Z[kPhiloxChunk], W[kPhiloxChunk];
  for (int64_t chunk = 0; chunk < blocks; chunk += kPhiloxChunk) {
    const int64_t n = std::min(kPhiloxChunk, blocks - chunk);
    philox_blocks(stream, first_block + static_cast<uint64_t>(chunk), n, X, Y, Z, W);
    opmath_t* out = buffer + 4 * chunk;
    for (int64_t b = 0; b < n; ++b) transform(X[b], Y[b], Z[b], W[b], out + 4 * b);
  }
  return buffer + lead;
}

template <typename opmath_t>
struct NormalBlock {  // two Box-Muller pairs, as normal4()
  GRADEXT_CPU_INLINE void operator()(uint32_t x, uint32_t y, uint32_t z, uint32_t w,
                                     opmath_t* out) const {
    opmath_t n0, n1, n2, n3;
    box_muller(x, y, &n0, &n1);
    box_muller(z, w, &n2, &n3);
    out[0] = n0;
    out[1] = n1;
    out[2] = n2;
    out[3] = n3;
  }
};

template <typename opmath_t>
struct GumbelBlock {
  GRADEXT_CPU_INLINE void operator()(uint32_t x, uint32_t y, uint32_t z, uint32_t w,
                                     opmath_t* out) const {
    out[0] = gumbel<opmath_t>(x);
    out[1] = gumbel<opmath_t>(y);
    out[2] = gumbel<opmath_t>(z);
    out[3] = gumbel<opmath_t>(w);
  }
};

template <typename opmath_t>
struct LogisticBlock {
  GRADEXT_CPU_INLINE void operator()(uint32_t x, uint32_t y, uint32_t z, uint32_t w,
                                     opmath_t* out) const {
    out[0] = logistic<opmath_t>(x);
    out[1] = logistic<opmath_t>(y);
    out[2] = logistic<opmath_t>(z);
    out[3] = logistic<opmath_t>(w);
  }
};

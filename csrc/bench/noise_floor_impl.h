// The body of the noise-floor microbenchmark (noise_floor.cpp), compiled once per CPU ISA by
// ops/cpu/per_isa.h like the kernels: it runs the same inline pieces the CPU kernels are made
// of, on one thread, over tiles that stay in L1, so that its time is arithmetic only. Timing and
// statistics stay in noise_floor.cpp, outside the per-ISA regions (no standard-library template
// is instantiated under an ISA's target here).

enum class Piece { kPhilox, kNormal, kGumbel, kExp, kLog };

// Runs `piece` over `values` values (a multiple of 4096); returns a checksum of the results.
inline float run_piece(Piece piece, int64_t values) {
  constexpr int64_t kTile = 4096;  // values per tile: 16 KiB of float
  const PhiloxStream stream = PhiloxStream::make(0x5eedull, 0);
  alignas(64) static uint32_t words[4][kPhiloxChunk + 16];
  alignas(64) static float tile[kTile + 8];
  alignas(64) static float input[kTile];
  float sum = 0;
  switch (piece) {
    case Piece::kPhilox:  // one 32-bit word = a quarter of a counter block
      for (int64_t b = 0; b < values / 4; b += kPhiloxChunk) {
        philox_blocks(stream, static_cast<uint64_t>(b), kPhiloxChunk, words[0], words[1],
                      words[2], words[3]);
        sum += static_cast<float>(words[0][0] >> 8);
      }
      break;
    case Piece::kNormal:  // Philox + Box-Muller, as gaussian_rsample's kernels
      for (int64_t first = 0; first < values; first += kTile) {
        sum += fill_noise<float>(stream, static_cast<uint64_t>(first), kTile, tile,
                                 NormalBlock<float>{})[0];
      }
      break;
    case Piece::kGumbel:  // Philox + two logs, as gumbel_softmax's kernels
      for (int64_t first = 0; first < values; first += kTile) {
        sum += fill_noise<float>(stream, static_cast<uint64_t>(first), kTile, tile,
                                 GumbelBlock<float>{})[0];
      }
      break;
    case Piece::kExp:
      for (int64_t i = 0; i < kTile; ++i) input[i] = -20.0f * static_cast<float>(i + 1) / kTile;
      for (int64_t done = 0; done < values; done += kTile) {
        for (int64_t i = 0; i < kTile; ++i) tile[i] = math::exp(input[i]);
        sum += tile[kTile - 1];
      }
      break;
    case Piece::kLog:
      for (int64_t i = 0; i < kTile; ++i) input[i] = static_cast<float>(i + 1) / (kTile + 1);
      for (int64_t done = 0; done < values; done += kTile) {
        for (int64_t i = 0; i < kTile; ++i) tile[i] = math::log_positive(input[i]);
        sum += tile[0];
      }
      break;
  }
  return sum;
}

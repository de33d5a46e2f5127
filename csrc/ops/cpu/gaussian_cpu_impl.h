// The CPU Gaussian kernels, written once and compiled once per instruction set: this file is
// included through per_isa.h by gaussian_kernel.cpp (no include guard on purpose, no
// includes of its own). Apart from Philox (philox_lanes.h) the loops are written for GCC's
// auto-vectorizer: branch-free bodies, unit-stride inner loops, no calls.
//
// Both directions tile the sample shape S and loop over the K samples inside a tile, so that
// the mean and the standard deviation (Spread::std_dev of the log-variance or the scale:
// common/gaussian_spread.h) are gathered once per element of S whatever K is, and the backward
// reduces over the samples without atomics (its result is independent of the thread count).

// Gathers values[j] = x[offset of S position s0 + j], j < count, through the [rows, cols] layout.
template <typename scalar_t, typename opmath_t, typename Transform>
GRADEXT_CPU_INLINE void gather_tile(const scalar_t* x, const Layout2D& L, int input,
                                    int64_t s0, int64_t count, opmath_t* values,
                                    Transform transform) {
  for (int64_t j = 0; j < count;) {
    const int64_t pos = s0 + j;
    const int64_t row = pos / L.cols;
    const int64_t col = pos - row * L.cols;
    const int64_t n = std::min(count - j, L.cols - col);
    const scalar_t* p = x + row * L.row_stride[input] + col * L.col_stride[input];
    const int64_t stride = L.col_stride[input];
    if (stride == 1) {
      for (int64_t t = 0; t < n; ++t) values[j + t] = transform(static_cast<opmath_t>(p[t]));
    } else {
      for (int64_t t = 0; t < n; ++t) {
        values[j + t] = transform(static_cast<opmath_t>(p[t * stride]));
      }
    }
    j += n;
  }
}

template <typename opmath_t>
struct Identity {
  GRADEXT_CPU_INLINE opmath_t operator()(opmath_t v) const { return v; }
};

template <typename opmath_t, typename Spread>
struct StdDev {
  GRADEXT_CPU_INLINE opmath_t operator()(opmath_t spread) const {
    return Spread::std_dev(spread);
  }
};

template <typename opmath_t, typename Spread>
struct StdDevDerivative {
  GRADEXT_CPU_INLINE opmath_t operator()(opmath_t spread) const {
    return Spread::std_dev_derivative(spread);
  }
};

template <typename scalar_t, typename Spread>
void gaussian_forward_tiles(const GaussianForwardArgs& a, int64_t tile_begin,
                            int64_t tile_end) {
  using opmath_t = at::opmath_type<scalar_t>;
  const auto* mean_in = static_cast<const scalar_t*>(a.mean);
  const auto* spread = static_cast<const scalar_t*>(a.spread);
  auto* z = static_cast<scalar_t*>(a.z);
  alignas(64) opmath_t noise[kGaussianTile + 8];
  alignas(64) opmath_t mean[kGaussianTile];
  alignas(64) opmath_t std[kGaussianTile];
  const int64_t num_samples = a.total / a.sample_numel;
  for (int64_t tile = tile_begin; tile < tile_end; ++tile) {
    const int64_t s0 = tile * kGaussianTile;
    const int64_t count = std::min(kGaussianTile, a.sample_numel - s0);
    gather_tile(mean_in, a.layout, 0, s0, count, mean, Identity<opmath_t>{});
    gather_tile(spread, a.layout, 1, s0, count, std, StdDev<opmath_t, Spread>{});
    for (int64_t k = 0; k < num_samples; ++k) {
      const int64_t first = k * a.sample_numel + s0;
      const opmath_t* eps =
          fill_noise(a.stream, static_cast<uint64_t>(first), count, noise, NormalBlock<opmath_t>{});
      scalar_t* out = z + first;
      for (int64_t t = 0; t < count; ++t) {
        out[t] = static_cast<scalar_t>(mean[t] + std[t] * eps[t]);
      }
    }
  }
}

// Accumulates grad and grad * eps over the K samples, then scales the latter by
// d z / d spread / eps = d sd / d spread (exp(logvar / 2) / 2, or 1 for the scale).
template <typename scalar_t, typename Spread>
void gaussian_backward_tiles(const GaussianBackwardArgs& a, int64_t tile_begin,
                             int64_t tile_end) {
  using opmath_t = at::opmath_type<scalar_t>;
  const auto* grad = static_cast<const scalar_t*>(a.grad);
  const auto* spread = static_cast<const scalar_t*>(a.spread);
  auto* grad_mean = static_cast<scalar_t*>(a.grad_mean);
  auto* grad_spread = static_cast<scalar_t*>(a.grad_spread);
  alignas(64) opmath_t noise[kGaussianTile + 8];
  alignas(64) opmath_t sum_grad[kGaussianTile];
  alignas(64) opmath_t sum_grad_eps[kGaussianTile];
  for (int64_t tile = tile_begin; tile < tile_end; ++tile) {
    const int64_t s0 = tile * kGaussianTile;
    const int64_t count = std::min(kGaussianTile, a.sample_numel - s0);
    for (int64_t t = 0; t < count; ++t) {
      sum_grad[t] = opmath_t(0);
      sum_grad_eps[t] = opmath_t(0);
    }
    for (int64_t k = 0; k < a.num_samples; ++k) {
      const int64_t first = k * a.sample_numel + s0;
      const opmath_t* eps =
          fill_noise(a.stream, static_cast<uint64_t>(first), count, noise, NormalBlock<opmath_t>{});
      const scalar_t* g = grad + first;
      for (int64_t t = 0; t < count; ++t) {
        const opmath_t gv = static_cast<opmath_t>(g[t]);
        sum_grad[t] += gv;
        sum_grad_eps[t] += gv * eps[t];
      }
    }
    // Reuse the noise buffer for d sd / d spread of this tile.
    opmath_t* slope = noise;
    gather_tile(spread, a.layout, 0, s0, count, slope, StdDevDerivative<opmath_t, Spread>{});
    if (grad_mean != nullptr) {
      for (int64_t t = 0; t < count; ++t) grad_mean[s0 + t] = static_cast<scalar_t>(sum_grad[t]);
    }
    for (int64_t t = 0; t < count; ++t) {
      grad_spread[s0 + t] = static_cast<scalar_t>(sum_grad_eps[t] * slope[t]);
    }
  }
}

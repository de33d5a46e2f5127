// The CPU Gaussian kernels, written once and compiled once per instruction set: this file is
// included by gaussian_rsample_kernel.cpp inside a per-ISA namespace with `#pragma GCC target`
// in effect (no include guard on purpose, and no includes of its own: everything it uses is
// always_inline, so it is compiled for the enclosing target). The loops are written for GCC's
// auto-vectorizer: branch-free bodies, unit-stride inner loops, no calls.

template <typename opmath_t>
GRADEXT_CPU_INLINE const opmath_t* fill_normals(const PhiloxStream& stream, uint64_t first,
                                                int64_t count, opmath_t* buffer) {
  // buffer[lead + j] = normal of element first + j, for j < count; returns buffer + lead.
  const uint64_t first_block = first >> 2;
  const int64_t lead = static_cast<int64_t>(first & 3);
  const int64_t blocks = (lead + count + 3) >> 2;
  for (int64_t b = 0; b < blocks; ++b) {
    opmath_t four[4];
    normal4(stream, first_block + static_cast<uint64_t>(b), four);
    buffer[4 * b + 0] = four[0];
    buffer[4 * b + 1] = four[1];
    buffer[4 * b + 2] = four[2];
    buffer[4 * b + 3] = four[3];
  }
  return buffer + lead;
}

// z[t] = mu[t] + exp(logvar[t] / 2) * eps[t] along one row segment.
template <typename scalar_t, typename opmath_t>
GRADEXT_CPU_INLINE void rsample_segment(const scalar_t* mu, int64_t mu_stride,
                                        const scalar_t* logvar, int64_t logvar_stride,
                                        const opmath_t* eps, scalar_t* z, int64_t n) {
  if (mu_stride == 1 && logvar_stride == 1) {
    for (int64_t t = 0; t < n; ++t) {
      const opmath_t std = math::exp(opmath_t(0.5) * static_cast<opmath_t>(logvar[t]));
      z[t] = static_cast<scalar_t>(static_cast<opmath_t>(mu[t]) + std * eps[t]);
    }
  } else {
    for (int64_t t = 0; t < n; ++t) {
      const opmath_t std =
          math::exp(opmath_t(0.5) * static_cast<opmath_t>(logvar[t * logvar_stride]));
      z[t] = static_cast<scalar_t>(static_cast<opmath_t>(mu[t * mu_stride]) + std * eps[t]);
    }
  }
}

template <typename scalar_t>
void gaussian_forward_tiles(const GaussianForwardArgs& a, int64_t tile_begin,
                            int64_t tile_end) {
  using opmath_t = at::opmath_type<scalar_t>;
  const auto* mu = static_cast<const scalar_t*>(a.mu);
  const auto* logvar = static_cast<const scalar_t*>(a.logvar);
  auto* z = static_cast<scalar_t*>(a.z);
  const Layout2D& L = a.layout;
  alignas(64) opmath_t buffer[kGaussianTile + 4];
  for (int64_t tile = tile_begin; tile < tile_end; ++tile) {
    const int64_t start = tile * kGaussianTile;
    const int64_t count = std::min(kGaussianTile, a.total - start);
    const opmath_t* eps = fill_normals(a.stream, static_cast<uint64_t>(start), count, buffer);
    // Walk the tile as segments of rows of the [rows, cols] layout of S.
    int64_t pos = start % a.sample_numel;
    for (int64_t j = 0; j < count;) {
      const int64_t row = pos / L.cols;
      const int64_t col = pos - row * L.cols;
      const int64_t n = std::min(count - j, L.cols - col);
      rsample_segment(mu + row * L.row_stride[0] + col * L.col_stride[0], L.col_stride[0],
                      logvar + row * L.row_stride[1] + col * L.col_stride[1], L.col_stride[1],
                      eps + j, z + start + j, n);
      j += n;
      pos += n;
      if (pos == a.sample_numel) pos = 0;  // next sample
    }
  }
}

// Tiles over S: accumulate grad and grad * eps over the K samples, then scale by
// d z / d logvar = eps * exp(logvar / 2) / 2.
template <typename scalar_t>
void gaussian_backward_tiles(const GaussianBackwardArgs& a, int64_t tile_begin,
                             int64_t tile_end) {
  using opmath_t = at::opmath_type<scalar_t>;
  const auto* grad = static_cast<const scalar_t*>(a.grad);
  const auto* logvar = static_cast<const scalar_t*>(a.logvar);
  auto* grad_mu = static_cast<scalar_t*>(a.grad_mu);
  auto* grad_logvar = static_cast<scalar_t*>(a.grad_logvar);
  const Layout2D& L = a.layout;
  alignas(64) opmath_t buffer[kGaussianTile + 4];
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
      const opmath_t* eps = fill_normals(a.stream, static_cast<uint64_t>(first), count, buffer);
      const scalar_t* g = grad + first;
      for (int64_t t = 0; t < count; ++t) {
        const opmath_t gv = static_cast<opmath_t>(g[t]);
        sum_grad[t] += gv;
        sum_grad_eps[t] += gv * eps[t];
      }
    }
    for (int64_t j = 0; j < count;) {
      const int64_t pos = s0 + j;
      const int64_t row = pos / L.cols;
      const int64_t col = pos - row * L.cols;
      const int64_t n = std::min(count - j, L.cols - col);
      const scalar_t* lv = logvar + row * L.row_stride[0] + col * L.col_stride[0];
      const int64_t lv_stride = L.col_stride[0];
      for (int64_t t = 0; t < n; ++t) {
        const opmath_t half_std =
            opmath_t(0.5) * math::exp(opmath_t(0.5) * static_cast<opmath_t>(lv[t * lv_stride]));
        grad_mu[pos + t] = static_cast<scalar_t>(sum_grad[j + t]);
        grad_logvar[pos + t] = static_cast<scalar_t>(sum_grad_eps[j + t] * half_std);
      }
      j += n;
    }
  }
}

// The CPU Gamma kernels, written once and compiled once per instruction set: this file is
// included through per_isa.h by gamma_kernel.cpp (no include guard on purpose, no includes of
// its own).
//
// Forward: a tile of elements takes the first proposal of Marsaglia and Tsang's sampler in
// vector loops (Philox block 0 of each element's sub-stream from philox_lanes.h, Box-Muller, the
// squeeze test, the alpha < 1 boost), each loop one transcendental chain as in noise_fill.h.
// The squeeze accepts the first proposal of most elements (about 98% at alpha = 1 and more
// above); the rest, and elements with invalid parameters, run the scalar sampler
// (gamma_element.h), which draws the same first proposal from the same words and goes on. The
// vector pass evaluates the scalar code's float operations in the same order, so every element
// is bitwise the scalar sampler's value (checked per ISA variant by the tests), and the CUDA
// kernel's.
//
// Backward: the implicit gradient in double (gamma_math.h's expansions), several elements'
// expansions side by side in vector lanes (below), bitwise the scalar functions' values.

template <typename scalar_t>
int64_t gamma_forward_range(const GammaForwardArgs& a, int64_t begin, int64_t end) {
  using T = at::opmath_type<scalar_t>;
  const auto* concentration = static_cast<const scalar_t*>(a.concentration);
  const auto* rate = static_cast<const scalar_t*>(a.rate);
  auto* z = static_cast<scalar_t*>(a.z);
  const uint64_t key = PhiloxSubstream::key(a.seed, a.offset);
  alignas(64) uint32_t X[kGammaTile], Y[kGammaTile], Z[kGammaTile], W[kGammaTile];
  alignas(64) T alpha[kGammaTile], beta[kGammaTile], normal[kGammaTile], sample[kGammaTile];
  alignas(64) T log_sample[kGammaTile], log_boost[kGammaTile];
  alignas(64) bool accepted[kGammaTile];
  int64_t first_invalid = -1;
  Layout2DCursor at(a.layout, begin % a.sample_numel);
  for (int64_t e0 = begin; e0 < end; e0 += kGammaTile) {
    const int64_t n = std::min(kGammaTile, end - e0);
    for (int64_t t = 0; t < n; ++t, at.advance()) {
      alpha[t] = static_cast<T>(concentration[at.offset(0)]);
      beta[t] = static_cast<T>(rate[at.offset(1)]);
    }
    philox_substream_first_blocks(key, static_cast<uint64_t>(e0), n, X, Y, Z, W);
    // The first proposal x = radius * cos(angle) from words 0 and 1 (box_muller's n0).
    for (int64_t t = 0; t < n; ++t) normal[t] = box_muller_radius<T>(X[t]);
    for (int64_t t = 0; t < n; ++t) {
      T s, c;
      box_muller_angle<T>(Y[t], &s, &c);
      normal[t] = normal[t] * c;
    }
    // standard_gamma_at_least_one's first iteration at alpha (or alpha + 1 for the boost):
    // u from word 2, accepted by the squeeze u < 1 - 0.0331 x^4.
    for (int64_t t = 0; t < n; ++t) {
      const T shape = alpha[t] >= T(1) ? alpha[t] : alpha[t] + T(1);
      const T d = shape - T(1) / T(3);
      const T c = T(1) / math::sqrt(T(9) * d);
      const T x = normal[t];
      T v = T(1) + c * x;
      const bool positive = v > T(0);
      v = v * v * v;
      const T u = uniform_open(Z[t], T(0));
      const T x2 = x * x;
      accepted[t] = positive && u < T(1) - T(0.0331) * x2 * x2;
      sample[t] = d * v;
    }
    // The boost of alpha < 1: log z = log G + log(u) / alpha, u from word 3 (the next word the
    // scalar sampler draws after an accepted first proposal).
    for (int64_t t = 0; t < n; ++t) {
      log_sample[t] = math::log(sample[t] > T(0) ? sample[t] : T(1));
    }
    for (int64_t t = 0; t < n; ++t) log_boost[t] = math::log_positive(uniform_open(W[t], T(0)));
    for (int64_t t = 0; t < n; ++t) {
      const T boosted = math::exp(log_sample[t] + log_boost[t] / alpha[t]);
      const T small = std::numeric_limits<T>::min();
      const T clamped = boosted < small ? small : boosted;
      sample[t] = alpha[t] >= T(1) ? sample[t] : clamped;
    }
    for (int64_t t = 0; t < n; ++t) {
      const T value = clamp_positive<scalar_t>(sample[t] / beta[t]);
      z[e0 + t] = static_cast<scalar_t>(value);
    }
    for (int64_t t = 0; t < n; ++t) {
      if (accepted[t] && gamma_sampler::valid_parameter(alpha[t]) &&
          gamma_sampler::valid_parameter(beta[t])) {
        continue;
      }
      const int64_t e = e0 + t;
      if (!gamma_sampler::valid_parameter(alpha[t]) || !gamma_sampler::valid_parameter(beta[t])) {
        if (first_invalid < 0) first_invalid = e;
        z[e] = std::numeric_limits<scalar_t>::quiet_NaN();
        continue;
      }
      z[e] = static_cast<scalar_t>(gamma_sampler::gamma_sample<scalar_t>(
          a.seed, a.offset, static_cast<uint64_t>(e), alpha[t], beta[t]));
    }
  }
  return first_invalid;
}

// The implicit gradient dz/dalpha of standard samples, kGradLanes elements at a time: the same
// expansions as gamma_math.h (dz_dalpha_series, dz_dalpha_continued_fraction), the same
// operations in the same order per element, each lane stopping at the step its scalar loop
// stops at (a finished lane's state is frozen by selects), so every value is bitwise the scalar
// function's. One element's expansion is a chain of dependent steps; running kGradLanes
// independent chains side by side fills the vector units and hides the division latency. The
// logs and digammas (libm calls and loops) are computed per element before the lanes run.
constexpr int kGradLanes = 8;

GRADEXT_CPU_INLINE bool any_active(const int64_t* active) {
  int64_t any = 0;
  for (int l = 0; l < kGradLanes; ++l) any |= active[l];
  return any != 0;
}

GRADEXT_CPU_INLINE void dz_dalpha_series_lanes(const double* alpha, const double* z,
                                               const double* log_z, int lanes, double tolerance,
                                               double* out) {
  alignas(64) double r[kGradLanes], psi[kGradLanes], sum[kGradLanes], a[kGradLanes],
      x[kGradLanes];
  // Masks as 64-bit integers, the width of the doubles they select: the vectorizer then blends.
  alignas(64) int64_t active[kGradLanes];
  for (int l = 0; l < kGradLanes; ++l) {  // unused lanes repeat lane 0 and are not written out
    const int src = l < lanes ? l : 0;
    a[l] = alpha[src];
    x[l] = z[src];
    r[l] = x[l] / a[l];
    psi[l] = gamma_math::digamma(a[l] + 1.0) - log_z[src];
    sum[l] = r[l] * psi[l];
    active[l] = 1;
  }
  for (int n = 1; n < gamma_math::kMaxTerms; n += 2) {
    for (int l = 0; l < kGradLanes; ++l) {
      const double a0 = a[l] + n;
      const double a1 = a0 + 1.0;
      const double q = 1.0 / (a0 * a1);
      const double inv0 = a1 * q;
      const double inv1 = a0 * q;
      double rl = r[l] * (x[l] * inv0);
      double pl = psi[l] + inv0;
      double sl = sum[l] + rl * pl;
      rl = rl * (x[l] * inv1);
      pl = pl + inv1;
      sl = sl + rl * pl;
      const bool act = active[l] != 0;
      r[l] = act ? rl : r[l];
      psi[l] = act ? pl : psi[l];
      sum[l] = act ? sl : sum[l];
      const bool done = rl * (std::fabs(pl) + 1.0) <= tolerance * sl && x[l] < a1;
      active[l] = (act && !done) ? 1 : 0;
    }
    if (!any_active(active)) break;
  }
  for (int l = 0; l < lanes; ++l) out[l] = sum[l];
}

GRADEXT_CPU_INLINE void dz_dalpha_continued_fraction_lanes(const double* alpha, const double* z,
                                                           int lanes, double tolerance,
                                                           double* out) {
  using gamma_math::Dual;
  constexpr double kTiny = 1e-300;
  alignas(64) double a[kGradLanes], bv[kGradLanes], cv[kGradLanes], cd[kGradLanes],
      dv[kGradLanes], dd[kGradLanes], fv[kGradLanes], fd[kGradLanes];
  alignas(64) int64_t active[kGradLanes];
  for (int l = 0; l < kGradLanes; ++l) {
    const int src = l < lanes ? l : 0;
    a[l] = alpha[src];
    const Dual b{z[src] + 1.0 - a[l], -1.0};
    const Dual d = Dual{1.0, 0.0} / b;
    bv[l] = b.v;
    cv[l] = 1.0 / kTiny;
    cd[l] = 0.0;
    dv[l] = d.v;
    dd[l] = d.d;
    fv[l] = d.v;
    fd[l] = d.d;
    active[l] = 1;
  }
  for (int k = 1; k < gamma_math::kMaxTerms; ++k) {
    for (int l = 0; l < kGradLanes; ++l) {
      const Dual minus_a{-k * (k - a[l]), static_cast<double>(k)};
      const Dual b = Dual{bv[l], -1.0} + Dual{2.0, 0.0};
      Dual d = b + minus_a * Dual{dv[l], dd[l]};
      d.v = std::fabs(d.v) < kTiny ? kTiny : d.v;
      Dual c = b + minus_a / Dual{cv[l], cd[l]};
      c.v = std::fabs(c.v) < kTiny ? kTiny : c.v;
      d = Dual{1.0, 0.0} / d;
      const Dual delta = c * d;
      const Dual f = Dual{fv[l], fd[l]} * delta;
      const bool act = active[l] != 0;
      bv[l] = act ? b.v : bv[l];
      cv[l] = act ? c.v : cv[l];
      cd[l] = act ? c.d : cd[l];
      dv[l] = act ? d.v : dv[l];
      dd[l] = act ? d.d : dd[l];
      fv[l] = act ? f.v : fv[l];
      fd[l] = act ? f.d : fd[l];
      const bool done = std::fabs(delta.v - 1.0) <= tolerance &&
                        std::fabs(delta.d * f.v) <= tolerance * std::fabs(f.d);
      active[l] = (act && !done) ? 1 : 0;
    }
    if (!any_active(active)) break;
  }
  for (int l = 0; l < lanes; ++l) {
    out[l] = z[l] * ((std::log(z[l]) - gamma_math::digamma(a[l])) * fv[l] + fd[l]);
  }
}

template <typename scalar_t>
void gamma_backward_range(const GammaBackwardArgs& a, int64_t begin, int64_t end) {
  constexpr bool kFloat64 = sizeof(scalar_t) == sizeof(double);
  const double tolerance = kFloat64 ? gamma_math::kTolerance : gamma_math::kFloatTolerance;
  const auto* grad = static_cast<const scalar_t*>(a.grad);
  const auto* z = static_cast<const scalar_t*>(a.z);
  const auto* concentration = static_cast<const scalar_t*>(a.concentration);
  const auto* rate = static_cast<const scalar_t*>(a.rate);
  auto* grad_concentration = static_cast<scalar_t*>(a.grad_concentration);
  auto* grad_rate = static_cast<scalar_t*>(a.grad_rate);
  // Per tile: the elements sorted into the two expansions' queues (gamma_math.h's split), each
  // run kGradLanes at a time, then the products with grad / rate.
  constexpr int64_t kTile = 64;
  alignas(64) double alpha[kTile], beta[kTile], standard[kTile], dz[kTile];
  alignas(64) double queue_alpha[kTile], queue_z[kTile], queue_log_z[kTile], queue_out[kTile];
  int queue_index[kTile];
  Layout2DCursor at(a.layout, begin % a.sample_numel);
  for (int64_t e0 = begin; e0 < end; e0 += kTile) {
    const int n = static_cast<int>(std::min(kTile, end - e0));
    for (int t = 0; t < n; ++t, at.advance()) {
      alpha[t] = static_cast<double>(concentration[at.offset(0)]);
      beta[t] = static_cast<double>(rate[at.offset(1)]);
      standard[t] = static_cast<double>(z[e0 + t]) * beta[t];
    }
    if (grad_rate != nullptr) {
      for (int t = 0; t < n; ++t) {
        const double g = static_cast<double>(grad[e0 + t]);
        grad_rate[e0 + t] = static_cast<scalar_t>(
            gamma_sampler::grad_rate(g, static_cast<double>(z[e0 + t]), beta[t]));
      }
    }
    if (grad_concentration == nullptr) continue;
    for (int series = 1; series >= 0; --series) {
      int queued = 0;
      for (int t = 0; t < n; ++t) {
        const double x = standard[t];
        const bool valid = alpha[t] > 0.0 && alpha[t] <= DBL_MAX && x > 0.0 && x <= DBL_MAX;
        if (!valid) {
          dz[t] = NAN;  // as gamma_dz_dconcentration
          continue;
        }
        if ((x < alpha[t] + 1.0 || x < 1.0) != (series == 1)) continue;
        queue_alpha[queued] = alpha[t];
        queue_z[queued] = x;
        queue_index[queued++] = t;
      }
      for (int q = 0; q < queued; q += kGradLanes) {
        const int lanes = std::min(kGradLanes, queued - q);
        if (series == 1) {
          for (int l = 0; l < lanes; ++l) queue_log_z[q + l] = std::log(queue_z[q + l]);
          dz_dalpha_series_lanes(queue_alpha + q, queue_z + q, queue_log_z + q, lanes,
                                 tolerance, queue_out + q);
        } else {
          dz_dalpha_continued_fraction_lanes(queue_alpha + q, queue_z + q, lanes, tolerance,
                                             queue_out + q);
        }
      }
      for (int q = 0; q < queued; ++q) dz[queue_index[q]] = queue_out[q];
    }
    for (int t = 0; t < n; ++t) {
      const double g = static_cast<double>(grad[e0 + t]);
      // grad * gamma_dz_dconcentration: the standard sample's gradient over the rate.
      grad_concentration[e0 + t] = static_cast<scalar_t>(g * (dz[t] / beta[t]));
    }
  }
}

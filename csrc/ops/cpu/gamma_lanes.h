// Vector building blocks of the CPU Gamma-family kernels (gamma_cpu_impl.h,
// dirichlet_cpu_impl.h), included inside their per-ISA namespaces (no include guard on purpose,
// no includes of its own): the sampler's first proposal for a tile of elements, and the implicit
// gradient's expansions several elements side by side. Both evaluate the scalar header code's
// operations in the same order (gamma_sampler.h, gamma_math.h), so every value is bitwise the
// scalar code's, on every ISA variant and on the GPU.

// The first proposal of Marsaglia and Tsang's sampler for n elements (n <= kGammaTile) from
// block 0 of their sub-streams (words X, Y, Z, W): the radius and angle words give x, word 2 the
// uniform of the squeeze test u < 1 - 0.0331 x^4, at the shape alpha (alpha + 1 for alpha < 1,
// the boost's). Writes the proposal d v^3 and whether the squeeze accepted it; where it did
// (and alpha < 1), word 3 is the boost's uniform, as in the scalar sampler. Each loop holds one
// transcendental chain (noise_fill.h says why).
template <typename T>
GRADEXT_CPU_INLINE void first_proposals(const T* alpha, const uint32_t* X, const uint32_t* Y,
                                        const uint32_t* Z, int64_t n, T* sample, bool* accepted) {
  alignas(64) T normal[kGammaTile];
  for (int64_t t = 0; t < n; ++t) normal[t] = box_muller_radius<T>(X[t]);
  for (int64_t t = 0; t < n; ++t) {
    T s, c;
    box_muller_angle<T>(Y[t], &s, &c);
    normal[t] = normal[t] * c;  // box_muller's n0
  }
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
}

// log of the standard Gamma draws of accepted first proposals (gamma_sampler.h:
// log_standard_gamma): log(d v^3), plus the boost's log(u) / alpha below alpha = 1 (u from word
// W). Garbage where the proposal was rejected (the caller redoes those).
template <typename T>
GRADEXT_CPU_INLINE void log_first_samples(const T* alpha, const T* sample, const uint32_t* W,
                                          int64_t n, T* log_sample) {
  alignas(64) T log_boost[kGammaTile];
  for (int64_t t = 0; t < n; ++t) log_sample[t] = math::log(sample[t] > T(0) ? sample[t] : T(1));
  for (int64_t t = 0; t < n; ++t) log_boost[t] = math::log_positive(uniform_open(W[t], T(0)));
  for (int64_t t = 0; t < n; ++t) {
    log_sample[t] = alpha[t] >= T(1) ? log_sample[t] : log_sample[t] + log_boost[t] / alpha[t];
  }
}

// The implicit gradient dz/dalpha of standard samples, kGradLanes elements at a time: the same
// expansions as gamma_math.h (dz_dalpha_series, dz_dalpha_continued_fraction), the same
// operations in the same order per element, each lane stopping at the step its scalar loop
// stops at (a finished lane's state is frozen by selects), so every value is bitwise the scalar
// function's. One element's expansion is a chain of dependent steps; running kGradLanes
// independent chains side by side fills the vector units and hides the division latency. The
// digammas run in lanes the same way (digamma_lanes), and the logs are gamma_math's vectorizable
// ones.
//
// Four vectors of doubles per ISA (2 doubles per SSE2 register, 4 per AVX2, 8 per AVX-512): a
// step's chain (a division, then products and sums) is several times longer than a division's
// issue interval, so one vector of lanes leaves the divider idle. On an Intel Xeon (AVX-512),
// one thread, the benchmark's inputs: one vector (8 lanes) 50 ns per element, two 39, four 34,
// eight 37 (the slowest lane holds more lanes back); with AVX2, two vectors 46, four 40. Zen1
// splits 256-bit divisions in two, and there two vectors ran no faster than one.
constexpr int kGradLanes = GRADEXT_CPU_ISA_LEVEL == 2 ? 32 : GRADEXT_CPU_ISA_LEVEL == 1 ? 16 : 8;

GRADEXT_CPU_INLINE bool any_active(const int64_t* active) {
  int64_t any = 0;
  for (int l = 0; l < kGradLanes; ++l) any |= active[l];
  return any != 0;
}

// gamma_math::digamma of kGradLanes arguments (each > 0), bitwise: the recurrence steps every
// lane until its argument reaches 10 (a lane already there keeps its values, as its scalar loop
// has stopped), then the asymptotic tail, the scalar operations in the scalar order per lane.
// One element's recurrence is a chain of up to ten dependent multiplies (about a quarter of the
// backward's time when it ran per element); kGradLanes chains side by side are throughput-bound.
GRADEXT_CPU_INLINE void digamma_lanes(const double* arg, double* out) {
  alignas(64) double x[kGradLanes], num[kGradLanes], den[kGradLanes], log_x[kGradLanes];
  alignas(64) int64_t shifting[kGradLanes];
  for (int l = 0; l < kGradLanes; ++l) {
    x[l] = arg[l];
    num[l] = 0.0;
    den[l] = 1.0;
  }
  // An argument in (0, 10) reaches 10 in at most ten steps (x + 1 is exact from x = 1 on); the
  // bound only guards the loop against an argument the callers never pass (NaN stops at once).
  for (int step = 0; step < 11; ++step) {
    for (int l = 0; l < kGradLanes; ++l) {
      const bool shift = x[l] < 10.0;
      num[l] = shift ? num[l] * x[l] + den[l] : num[l];
      den[l] = shift ? den[l] * x[l] : den[l];
      x[l] = shift ? x[l] + 1.0 : x[l];
      shifting[l] = shift ? 1 : 0;
    }
    if (!any_active(shifting)) break;
  }
  for (int l = 0; l < kGradLanes; ++l) log_x[l] = math::log_vectorizable(x[l]);
  for (int l = 0; l < kGradLanes; ++l) {
    out[l] = gamma_math::digamma_asymptotic(x[l], log_x[l], -num[l] / den[l]);
  }
}

GRADEXT_CPU_INLINE void dz_dalpha_series_lanes(const double* alpha, const double* z,
                                               const double* log_z, int lanes, double tolerance,
                                               double* out) {
  alignas(64) double r[kGradLanes], psi[kGradLanes], sum[kGradLanes], a[kGradLanes],
      x[kGradLanes], a_plus_1[kGradLanes];
  // Masks as 64-bit integers, the width of the doubles they select: the vectorizer then blends.
  alignas(64) int64_t active[kGradLanes];
  for (int l = 0; l < kGradLanes; ++l) {  // unused lanes repeat lane 0 and are not written out
    const int src = l < lanes ? l : 0;
    a[l] = alpha[src];
    x[l] = z[src];
    a_plus_1[l] = a[l] + 1.0;
  }
  digamma_lanes(a_plus_1, psi);
  for (int l = 0; l < kGradLanes; ++l) {
    const int src = l < lanes ? l : 0;
    r[l] = x[l] / a[l];
    psi[l] = psi[l] - log_z[src];
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
  alignas(64) double psi[kGradLanes];
  digamma_lanes(a, psi);
  for (int l = 0; l < lanes; ++l) {
    out[l] = z[l] * ((math::log_vectorizable(z[l]) - psi[l]) * fv[l] + fd[l]);
  }
}

// Elements per call of dz_dalpha_tile: enough that each expansion's queue leaves few lanes of
// its last group of kGradLanes empty, and that its buckets (below) hold a group's worth (512
// against 256: 34 -> 32 ns per element with 32 lanes, 40 -> 38 with 16).
constexpr int kGradTile = 512;

// dz/dalpha of n <= kGradTile standard samples (alpha[t], g[t]): each sorted into gamma_math.h's
// expansion for its point (the series below g = max(alpha + 1, 1), the continued fraction
// above), each expansion run kGradLanes elements at a time; NaN where (alpha, g) is no point of
// a Gamma distribution. Bitwise gamma_math::standard_gamma_dz_dalpha at `tolerance`.
//
// A group of lanes runs until its slowest lane has converged, and the number of terms varies
// from element to element (2 to 20 at shapes near 1): in element order, eight lanes did 1.56
// times the work of the elements' own term counts (simulated over the benchmark's inputs). So each
// queue is ordered by a cheap predictor of the count, in kGradBuckets buckets (a counting sort):
// g / (alpha + 1) for the series (its terms fall like g / (alpha + n)), g - alpha for the
// continued fraction (it converges faster the further g lies above alpha), which brings that
// factor to 1.21 (eight lanes, tiles of 256). Lanes are independent, so the order changes no
// value.
constexpr int kGradBuckets = 16;

GRADEXT_CPU_INLINE void dz_dalpha_tile(const double* alpha, const double* g, int n,
                                       double tolerance, double* dz) {
  // Queue 0: the series, 1: the continued fraction, 2: invalid points (NaN, not computed).
  constexpr int kQueues = 3, kSeries = 0, kContinuedFraction = 1, kInvalid = 2;
  alignas(64) double queue_alpha[kGradTile], queue_z[kGradTile], queue_log_z[kGradTile],
      queue_out[kGradTile];
  int queue_index[kGradTile];
  int bucket_of[kGradTile];
  // Branch-free classification (which expansion an element needs is as good as random: a branch
  // on it was mispredicted often enough to cost a sixth of the backward), in a loop of its own
  // that vectorizes.
  for (int t = 0; t < n; ++t) {
    const double a = alpha[t];
    const double x = g[t];
    // Bitwise & and |: a short-circuit && or || is a branch, which stops the vectorizer.
    const bool valid = (a > 0.0) & (a <= DBL_MAX) & (x > 0.0) & (x <= DBL_MAX);
    const bool series = (x < a + 1.0) | (x < 1.0);
    // Predictors clamped before the conversion (a NaN key, only at an invalid point, compares
    // false: bucket 0). Two plain selects: GCC's if-conversion leaves a nested one a branch.
    const double series_key = 16.0 * (x / (a + 1.0));
    const double fraction_key = 4.0 * (x - a);
    const double key = series ? series_key : fraction_key;
    const double at_least_0 = key > 0.0 ? key : 0.0;
    const double clamped = at_least_0 < 15.0 ? at_least_0 : 15.0;
    const int bucket = static_cast<int>(clamped);
    const int series_bin = kSeries * kGradBuckets + bucket;
    const int fraction_bin = kContinuedFraction * kGradBuckets + kGradBuckets - 1 - bucket;
    const int bin = series ? series_bin : fraction_bin;  // the fraction: fastest last
    bucket_of[t] = valid ? bin : kInvalid * kGradBuckets + bucket;
  }
  // The counting sort, with the elements dealt round-robin to kStreams streams, each with its
  // own counts and cursors: neighbours mostly share a bucket, and with one count per bucket each
  // increment waited on the previous one's store (a fifth of the backward on a Xeon). Within a
  // bucket the order is stream by stream; lanes are independent, so no value depends on it.
  constexpr int kStreams = 4, kBins = kQueues * kGradBuckets;
  int cursor[kStreams][kBins] = {};
  for (int t = 0; t < n; ++t) cursor[t % kStreams][bucket_of[t]] += 1;
  int start = 0, series_end = 0, fraction_end = 0;
  for (int b = 0; b < kBins; ++b) {  // counts -> each stream's first slot in each bucket
    if (b == kContinuedFraction * kGradBuckets) series_end = start;
    if (b == kInvalid * kGradBuckets) fraction_end = start;
    for (int s = 0; s < kStreams; ++s) {
      const int count = cursor[s][b];
      cursor[s][b] = start;
      start += count;
    }
  }
  for (int t = 0; t < n; ++t) {
    const int q = cursor[t % kStreams][bucket_of[t]]++;
    queue_alpha[q] = alpha[t];
    queue_z[q] = g[t];
    queue_index[q] = t;
  }
  for (int q = 0; q < series_end; ++q) queue_log_z[q] = math::log_vectorizable(queue_z[q]);
  for (int q = 0; q < series_end; q += kGradLanes) {
    dz_dalpha_series_lanes(queue_alpha + q, queue_z + q, queue_log_z + q,
                           std::min(kGradLanes, series_end - q), tolerance, queue_out + q);
  }
  for (int q = series_end; q < fraction_end; q += kGradLanes) {
    dz_dalpha_continued_fraction_lanes(queue_alpha + q, queue_z + q,
                                       std::min(kGradLanes, fraction_end - q), tolerance,
                                       queue_out + q);
  }
  for (int q = fraction_end; q < n; ++q) queue_out[q] = NAN;  // as gamma_dz_dconcentration
  for (int q = 0; q < n; ++q) dz[queue_index[q]] = queue_out[q];
}

// The CPU von Mises kernels, written once and compiled once per instruction set: this file is
// included through per_isa.h by von_mises_kernel.cpp (no include guard on purpose, no includes
// of its own).
//
// The forward takes every element's first proposal of Best and Fisher's sampler in vector loops
// (Philox block 0 of each element's sub-stream from philox_lanes.h), accepted for 65% to 100%
// of elements depending on the concentration; the rest, and elements with invalid parameters,
// run the scalar sampler (csrc/common/von_mises_sampler.h, the CUDA kernel's code), which draws
// the same first proposal from the same words and goes on. Both run the header's operations, so
// every element is bitwise the scalar sampler's value on every ISA. The backward takes
// 1 - A (the mean resultant length's complement) for a tile of elements in lanes, then the bulk
// and the gentle-tail elements' quadratures in lanes across elements (the far tails of large
// concentrations, rare, element by element), every value bitwise the header function's
// (von_mises_math.h).

template <typename scalar_t>
int64_t von_mises_forward_range(const VonMisesForwardArgs& a, int64_t begin, int64_t end) {
  using T = at::opmath_type<scalar_t>;
  namespace vs = von_mises_sampler;
  const auto* loc = static_cast<const scalar_t*>(a.loc);
  const auto* concentration = static_cast<const scalar_t*>(a.concentration);
  auto* x = static_cast<scalar_t*>(a.x);
  const uint64_t key = PhiloxSubstream::key(a.seed, a.offset);
  alignas(64) uint32_t X[kVonMisesTile], Y[kVonMisesTile], Z[kVonMisesTile], W[kVonMisesTile];
  alignas(64) T mu[kVonMisesTile], kappa[kVonMisesTile], magnitude[kVonMisesTile];
  alignas(64) bool accepted[kVonMisesTile];
  int64_t first_invalid = -1;
  Layout2DCursor at(a.layout, begin % a.sample_numel);
  for (int64_t e0 = begin; e0 < end; e0 += kVonMisesTile) {
    const int64_t n = std::min(kVonMisesTile, end - e0);
    for (int64_t t = 0; t < n; ++t, at.advance()) {
      mu[t] = static_cast<T>(loc[at.offset(0)]);
      kappa[t] = static_cast<T>(concentration[at.offset(1)]);
    }
    // Every element's first proposal side by side (words x, y of its sub-stream's block 0; the
    // sign is word z), the scalar sampler's operations.
    philox_substream_first_blocks(key, static_cast<uint64_t>(e0), n, X, Y, Z, W);
    for (int64_t t = 0; t < n; ++t) {
      const vs::Proposal<T> p(kappa[t]);
      accepted[t] = vs::try_proposal(p, X[t], Y[t], &magnitude[t]);
    }
    for (int64_t t = 0; t < n; ++t) {
      const T value = vs::wrap_angle(mu[t] + vs::signed_angle(Z[t], magnitude[t]));
      x[e0 + t] = static_cast<scalar_t>(value);
    }
    // Rejected first proposals and invalid parameters, element by element.
    for (int64_t t = 0; t < n; ++t) {
      const bool valid = vs::valid_loc(mu[t]) && vs::valid_concentration(kappa[t]);
      if (accepted[t] && valid) continue;
      const int64_t e = e0 + t;
      if (!valid) {
        if (first_invalid < 0) first_invalid = e;
        x[e] = std::numeric_limits<scalar_t>::quiet_NaN();
        continue;
      }
      x[e] = static_cast<scalar_t>(
          vs::von_mises_sample<T>(a.seed, a.offset, static_cast<uint64_t>(e), mu[t], kappa[t]));
    }
  }
  return first_invalid;
}

// 1 - A for a tile of concentrations: Perron's fraction in vector lanes, each lane running its
// own number of steps (a lane past its start keeps its start value until its first step), so
// that every value is bitwise von_mises_math::one_minus_mean_resultant's; Hankel's series, for
// concentrations of 50 and above, element by element. The fraction's divisions form one chain
// per element, latency-bound when run alone: side by side they overlap.
inline void one_minus_mean_resultant_tile(const double* kappa, int n, double* out) {
  alignas(64) double inverse[kVonMisesTile], terms[kVonMisesTile], c[kVonMisesTile];
  double most = 0.0;
  for (int t = 0; t < n; ++t) {
    const bool perron = kappa[t] < von_mises_math::kHankelFrom;
    const int n_start = perron ? von_mises_math::perron_terms(kappa[t]) : 0;
    terms[t] = n_start;
    inverse[t] = 1.0 / kappa[t];
    c[t] = perron ? von_mises_math::perron_start(kappa[t], n_start) : 0.0;
    most = terms[t] > most ? terms[t] : most;
  }
  for (int step = static_cast<int>(most); step >= 1; --step) {
    for (int t = 0; t < n; ++t) {
      const double next = von_mises_math::perron_step(step * (2.0 * inverse[t]), c[t]);
      c[t] = step <= terms[t] ? next : c[t];
    }
  }
  for (int t = 0; t < n; ++t) {
    out[t] = kappa[t] < von_mises_math::kHankelFrom
                 ? c[t]
                 : von_mises_math::one_minus_mean_resultant(kappa[t]);
  }
}

// The integrals of one form for a tile's elements of that form (compacted), node by node across
// elements so that each node's exponentials, sines, square roots and divisions run in vector
// lanes: the operations of von_mises_math's bulk_integral and tail_integral in their order, so
// each value is bitwise the header's. `integrand(j, x)` is element j's integrand at node x.
template <int Points, class Integrand>
inline void legendre_integrals(const double* half, int n, const Integrand& integrand,
                               double* integral) {
  alignas(64) double total[kVonMisesTile];
  for (int j = 0; j < n; ++j) total[j] = 0.0;
  von_mises_math::for_each_legendre_node<Points>([&](double x, double w) {
    for (int j = 0; j < n; ++j) total[j] += w * (integrand(j, -x) + integrand(j, x));
  });
  for (int j = 0; j < n; ++j) integral[j] = half[j] * total[j];
}

// A tile's elements of one form, compacted: index in the tile, kappa, 1 - A, s_d^2, the half
// length of the integration interval, its middle (tails), and the integral.
struct FormLanes {
  alignas(64) double kappa[kVonMisesTile], one_minus_a[kVonMisesTile], sd2[kVonMisesTile],
      half[kVonMisesTile], middle[kVonMisesTile], integral[kVonMisesTile];
  int index[kVonMisesTile];
  int n = 0;
};

template <typename scalar_t>
void von_mises_backward_range(const VonMisesBackwardArgs& a, int64_t begin, int64_t end) {
  namespace vm = von_mises_math;
  const auto* grad = static_cast<const scalar_t*>(a.grad);
  const auto* x = static_cast<const scalar_t*>(a.x);
  const auto* loc = static_cast<const scalar_t*>(a.loc);
  const auto* concentration = static_cast<const scalar_t*>(a.concentration);
  auto* grad_concentration = static_cast<scalar_t*>(a.grad_concentration);
  alignas(64) double kappa[kVonMisesTile], delta[kVonMisesTile], one_minus_a[kVonMisesTile],
      value[kVonMisesTile];
  FormLanes bulk, tail;
  Layout2DCursor at(a.layout, begin % a.sample_numel);
  for (int64_t e0 = begin; e0 < end; e0 += kVonMisesTile) {
    const int n = static_cast<int>(std::min(kVonMisesTile, end - e0));
    for (int t = 0; t < n; ++t, at.advance()) {
      kappa[t] = static_cast<double>(concentration[at.offset(1)]);
      delta[t] = von_mises_sampler::offset_from_loc(static_cast<double>(x[e0 + t]),
                                                    static_cast<double>(loc[at.offset(0)]));
    }
    one_minus_mean_resultant_tile(kappa, n, one_minus_a);
    bulk.n = tail.n = 0;
    for (int t = 0; t < n; ++t) {
      const double d = std::fabs(delta[t]);
      const double sd2 = vm::half_versine(d);
      const vm::Form form = vm::integral_form(kappa[t], one_minus_a[t], sd2);
      if (form == vm::Form::kSteepTail) {  // rare: element by element
        value[t] = vm::ddelta_dkappa_of_form(form, kappa[t], one_minus_a[t], d, sd2);
        continue;
      }
      FormLanes& lanes = form == vm::Form::kBulk ? bulk : tail;
      const int j = lanes.n++;
      lanes.index[j] = t;
      lanes.kappa[j] = kappa[t];
      lanes.one_minus_a[j] = one_minus_a[t];
      if (form == vm::Form::kBulk) {  // as bulk_integral, given sqrt(sd2)
        const double sd = math::sqrt(sd2);
        lanes.half[j] = 0.5 * sd;
        lanes.sd2[j] = sd * sd;
      } else {  // as tail_integral
        lanes.half[j] = vm::tail_half_length(d);
        lanes.middle[j] = d + lanes.half[j];
        lanes.sd2[j] = sd2;
      }
    }
    legendre_integrals<16>(bulk.half, bulk.n, [&](int j, double x) {
      return vm::bulk_integrand(bulk.kappa[j], bulk.one_minus_a[j], bulk.sd2[j], bulk.half[j], x);
    }, bulk.integral);
    legendre_integrals<24>(tail.half, tail.n, [&](int j, double x) {
      return vm::tail_integrand(tail.kappa[j], tail.one_minus_a[j], tail.sd2[j], tail.middle[j],
                                tail.half[j], x);
    }, tail.integral);
    for (int j = 0; j < bulk.n; ++j) value[bulk.index[j]] = -bulk.integral[j];
    for (int j = 0; j < tail.n; ++j) value[tail.index[j]] = tail.integral[j];
    for (int t = 0; t < n; ++t) {
      const double h = delta[t] < 0.0 ? -value[t] : value[t];
      grad_concentration[e0 + t] = static_cast<scalar_t>(static_cast<double>(grad[e0 + t]) * h);
    }
  }
}

// The CPU von Mises kernels, written once and compiled once per instruction set: this file is
// included through per_isa.h by von_mises_kernel.cpp (no include guard on purpose, no includes
// of its own).
//
// Both loops call the header functions element by element (csrc/common/von_mises_sampler.h),
// the CUDA kernel's code: a rejection loop and, in the backward, one of three quadratures chosen
// per element, neither of which has the fixed shape that vector lanes need. The per-ISA build
// still lets the compiler use the wider instructions inside each function.

template <typename scalar_t>
int64_t von_mises_forward_range(const VonMisesForwardArgs& a, int64_t begin, int64_t end) {
  using T = at::opmath_type<scalar_t>;
  const auto* loc = static_cast<const scalar_t*>(a.loc);
  const auto* concentration = static_cast<const scalar_t*>(a.concentration);
  auto* x = static_cast<scalar_t*>(a.x);
  int64_t first_invalid = -1;
  Layout2DCursor at(a.layout, begin % a.sample_numel);
  for (int64_t e = begin; e < end; ++e, at.advance()) {
    const auto mu = static_cast<T>(loc[at.offset(0)]);
    const auto kappa = static_cast<T>(concentration[at.offset(1)]);
    if (!von_mises_sampler::valid_loc(mu) || !von_mises_sampler::valid_concentration(kappa)) {
      if (first_invalid < 0) first_invalid = e;
      x[e] = std::numeric_limits<scalar_t>::quiet_NaN();
      continue;
    }
    x[e] = static_cast<scalar_t>(von_mises_sampler::von_mises_sample<T>(
        a.seed, a.offset, static_cast<uint64_t>(e), mu, kappa));
  }
  return first_invalid;
}

template <typename scalar_t>
void von_mises_backward_range(const VonMisesBackwardArgs& a, int64_t begin, int64_t end) {
  const auto* grad = static_cast<const scalar_t*>(a.grad);
  const auto* x = static_cast<const scalar_t*>(a.x);
  const auto* loc = static_cast<const scalar_t*>(a.loc);
  const auto* concentration = static_cast<const scalar_t*>(a.concentration);
  auto* grad_concentration = static_cast<scalar_t*>(a.grad_concentration);
  Layout2DCursor at(a.layout, begin % a.sample_numel);
  for (int64_t e = begin; e < end; ++e, at.advance()) {
    grad_concentration[e] = static_cast<scalar_t>(von_mises_sampler::grad_concentration(
        static_cast<double>(grad[e]), static_cast<double>(x[e]),
        static_cast<double>(loc[at.offset(0)]), static_cast<double>(concentration[at.offset(1)])));
  }
}

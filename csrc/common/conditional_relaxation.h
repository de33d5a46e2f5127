// The conditional relaxation of REBAR (Tucker, Mnih, Maddison, Lawson, Sohl-Dickstein 2017,
// appendix), per Bernoulli element and per categorical category, for the CPU and CUDA kernels.
//
// A discrete sample b = H(z) of z = logits + noise comes with two relaxations: soft, the
// relaxation of z itself, and soft_cond, the relaxation of z_tilde ~ p(z | b) drawn from noise
// of its own (the conditional reparameterization). Both are written so that nothing cancels
// and H(z_tilde) = b holds in floating point, not only in exact arithmetic.
//
// Bernoulli, z = x + L (L logistic), b = 1[z > 0], v uniform with logistic L_v = logit(v):
//   b = 1: z_tilde =  softplus(L_v + softplus(x))    (> 0)
//   b = 0: z_tilde = -softplus(L_v + softplus(-x))   (< 0)
// which is Tucker et al.'s log(v / (1 - v) / (1 - theta) + 1) in log space (1 / (1 - theta) =
// 1 + e^x). softplus(L_v + ...) >= softplus(-22.9) > 0 in every float type, so the sign of
// z_tilde is never lost. d z_tilde / d x = sigmoid(a) sigmoid(+-x), a the softplus argument.
//
// Categorical, z_c = x_c + g_c (g Gumbel), b = argmax z, conditional Gumbels gt_c:
//   z_tilde_b = gt_b + lse(x),  z_tilde_c = -log(exp(-(x_c + gt_c)) + exp(-z_tilde_b))  (c != b)
// kept relative to z_tilde_b, which is all a softmax sees:
//   d_c = z_tilde_c - z_tilde_b = -softplus(gt_b - gt_c - log_theta_c),  d_b = 0,
// log_theta = x - lse(x). d_c < 0 for every c != b (softplus of an argument >= -26.1 is
// positive in every float type), so argmax z_tilde = b exactly. d d_c / d log_theta_c =
// sigmoid(gt_b - gt_c - log_theta_c), and d log_theta_c / d x_j = [c = j] - theta_j.
#pragma once

#include <cstdint>

#include "invalid_inputs.h"
#include "macros.h"
#include "random_transforms.h"
#include "scalar_math.h"

namespace gradext {

// The conditional noise of element i is the Philox word of element kConditionalNoiseFirst + i
// of the call's stream: the z noise's counter layout moved by 2^61 blocks, so that the two never
// share a counter block within a call (a call has fewer than 2^63 elements) and across calls
// the stream's offset keeps them apart as it keeps every op's noise apart.
constexpr uint64_t kConditionalNoiseFirst = 1ull << 63;

// log(1 + t) for t >= 0 (or NaN) without libm's log1p, so that float results are the same on
// every device: log(y) * t / (y - 1) with y = 1 + t, y - 1 exact (Goldberg), and t where y
// rounds to 1.
template <typename T>
GRADEXT_INLINE T log1p_nonnegative(T t) {
  const T y = T(1) + t;
  return y == T(1) ? t : math::log_positive(y) * (t / (y - T(1)));
}

template <typename T>
struct SoftplusPair {
  T of_x;      // softplus(x) = log(1 + e^x)
  T of_minus;  // softplus(-x)
};

// softplus(x) and softplus(-x) from one exp and one log: max(+-x, 0) + log1p(e^-|x|). Exact at
// +-inf (inf and 0), NaN for NaN.
template <typename T>
GRADEXT_INLINE SoftplusPair<T> softplus_pair(T x) {
  const T magnitude = x < T(0) ? -x : x;
  const T tail = log1p_nonnegative(math::exp(-magnitude));
  return {(x > T(0) ? x : T(0)) + tail, (x < T(0) ? -x : T(0)) + tail};
}

template <typename T>
GRADEXT_INLINE T softplus(T x) {
  return softplus_pair(x).of_x;
}

// sigmoid(v) = 1 / (1 + e^-v), relatively accurate for every v; 1 at +inf, 0 at -inf.
template <typename T>
GRADEXT_INLINE T sigmoid(T v) {
  return T(1) / (T(1) + math::exp(-v));
}

// --- Bernoulli ---

template <typename T>
struct BernoulliConditional {
  T b;          // 1[z > 0] (NaN when z is NaN)
  T z;          // x + L
  T a;          // the softplus argument of z_tilde: L_v + softplus(+-x)
  T z_tilde;    // +-softplus(a), of the sign of b
};

template <typename T>
GRADEXT_INLINE BernoulliConditional<T> bernoulli_conditional(T x, T noise, T cond_noise) {
  const T z = x + noise;
  const T b = bernoulli_of_score(z);
  const SoftplusPair<T> sx = softplus_pair(x);
  const bool one = b == T(1);
  const T a = cond_noise + (one ? sx.of_x : sx.of_minus);
  const T magnitude = softplus(a);
  return {b, z, a, one ? magnitude : -magnitude};
}

// The gradient with respect to x of grad_soft * soft + grad_cond * soft_cond, with soft =
// sigmoid(z / tau) and soft_cond = sigmoid(z_tilde / tau) of the same noise.
template <typename T>
GRADEXT_INLINE T bernoulli_conditional_grad(T x, T noise, T cond_noise, T inv_tau, T grad_soft,
                                            T grad_cond) {
  const BernoulliConditional<T> s = bernoulli_conditional(x, noise, cond_noise);
  const T v = s.z * inv_tau;
  const T vc = s.z_tilde * inv_tau;
  // sigmoid'(v) = sigmoid(v) sigmoid(-v): no 1 - sigmoid(v) that rounds to 0 for large v.
  const T dsoft = sigmoid(v) * sigmoid(-v) * inv_tau;
  const T dcond = sigmoid(vc) * sigmoid(-vc) * inv_tau;
  const T dz_tilde = sigmoid(s.a) * sigmoid(s.b == T(1) ? x : -x);
  return grad_soft * dsoft + grad_cond * (dcond * dz_tilde);
}

// --- categorical ---

// d_c of a category c != b (see the top): -softplus(gt_b - gt_c - log_theta_c); -inf for a
// masked category (log_theta_c = -inf).
template <typename T>
GRADEXT_INLINE T conditional_offset(T cond_gumbel_b, T cond_gumbel_c, T log_theta_c) {
  return -softplus(cond_gumbel_b - cond_gumbel_c - log_theta_c);
}

// d d_c / d log_theta_c = sigmoid(gt_b - gt_c - log_theta_c), and 0 for c = b (d_b = 0).
template <typename T>
GRADEXT_INLINE T conditional_offset_slope(T cond_gumbel_b, T cond_gumbel_c, T log_theta_c,
                                          bool is_b) {
  return is_b ? T(0) : sigmoid(cond_gumbel_b - cond_gumbel_c - log_theta_c);
}

}  // namespace gradext

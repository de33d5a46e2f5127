// The conditional relaxation of REBAR (Tucker, Mnih, Maddison, Lawson, Sohl-Dickstein 2017,
// appendix), per Bernoulli element and per categorical category, for the CPU and CUDA kernels.
//
// A discrete sample b = H(z) of z = logits + noise comes with two relaxations: soft, the
// relaxation of z itself, and soft_cond, the relaxation of z_tilde ~ p(z | b) drawn from noise
// of its own (the conditional reparameterization). Both are written so that nothing cancels
// or overflows, H(z_tilde) = b holds in floating point, and each costs as few exp and log
// evaluations as the maths allows (they bound the kernels on the CPU).
//
// Bernoulli: z = x + L (L logistic), b = 1[z > 0]; with r = v / (1 - v) the odds of the
// conditional uniform v and s = x for b = 1, -x for b = 0 (the logit of the drawn outcome),
//   |z_tilde| = log(1 + r (1 + e^s)),  z_tilde of the sign of b,
// Tucker et al.'s log(v / (1 - v) / (1 - theta) + 1). With t = e^-|s| and w = r (1 + t) it is
// log1p(w) for s <= 0 and s + log(t + w) for s > 0: one exp and one log, no overflow (w <= 2r + 1
// and r <= 2^33). |z_tilde| >= log1p(r) > 0 (r >= 2^-33), so its sign is never lost.
// d z_tilde / d x = sigmoid(a) sigmoid(s) with a = log(r (1 + e^s)), and sigmoid(a) = w / y for
// y the log's argument, in both cases.
//
// Categorical: z_c = x_c + g_c (g Gumbel), b = argmax z, conditional exponentials E (Gumbels
// -log E): z_tilde_b = -log E_b + lse(x), z_tilde_c = -log(E_c / theta_c + E_b) + lse(x),
// theta = softmax(x). A softmax sees only the offsets from z_tilde_b:
//   d_c = z_tilde_c - z_tilde_b = -log1p(q_c),  q_c = E_c / (E_b theta_c),  d_b = 0,
// one log per category. d_c < 0 for every c != b (q_c >= 2^-33 / 23 > 0 and log1p keeps tiny
// arguments), so argmax z_tilde = b; a masked category (theta_c = 0) has d_c = -inf.
// d d_c / d log(theta_c) = q_c / (1 + q_c) (1 when masked), d log(theta_c) / d x_j =
// [c = j] - theta_j.
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

// log1p(w) for w >= 0 given y = 1 + w (rounded) and log(y), without libm's log1p so that float
// results are the same on every device: log(y) w / (y - 1), y - 1 exact (Goldberg), and w
// where y rounds to 1.
template <typename T>
GRADEXT_INLINE T log1p_from_log(T w, T y, T log_y) {
  return y == T(1) ? w : log_y * (w / (y - T(1)));
}

// --- Bernoulli ---

// The odds r = v / (1 - v) of the conditional uniform of one Philox word (the exponential of its
// logistic noise; 1 - v is exact on both uniform grids).
template <typename T>
GRADEXT_INLINE T conditional_odds(uint32_t bits) {
  const T v = uniform_open(bits, T(0));
  return v / (T(1) - v);
}

template <typename T>
struct BernoulliConditional {
  T b;        // 1[z > 0] (NaN when z is NaN)
  T z;        // x + L
  T z_tilde;  // of the sign of b
  T slope;    // d z_tilde / d x = sigmoid(a) sigmoid(s)
};

template <typename T>
GRADEXT_INLINE BernoulliConditional<T> bernoulli_conditional(T x, T noise, T cond_odds) {
  const T z = x + noise;
  const T b = bernoulli_of_score(z);
  const bool one = b == T(1);
  const T s = one ? x : -x;
  const bool positive = s > T(0);
  const T t = math::exp(positive ? -s : s);  // e^-|s|
  const T w = cond_odds * (T(1) + t);
  const T y = (positive ? t : T(1)) + w;
  const T log_y = math::log(y);
  const T magnitude = positive ? s + log_y : log1p_from_log(w, y, log_y);
  const T sigmoid_s = (positive ? T(1) : t) / (T(1) + t);
  return {b, z, one ? magnitude : -magnitude, (w / y) * sigmoid_s};
}

// sigmoid(v) = 1 / (1 + e^-v): relatively accurate for every v; 1 at +inf, 0 at -inf.
template <typename T>
GRADEXT_INLINE T sigmoid(T v) {
  return T(1) / (T(1) + math::exp(-v));
}

// sigmoid'(v) = sigmoid(v) sigmoid(-v) = e^-|v| / (1 + e^-|v|)^2, one exp, no 1 - sigmoid(v)
// that rounds to 0.
template <typename T>
GRADEXT_INLINE T sigmoid_slope(T v) {
  const T t = math::exp(v > T(0) ? -v : v);
  return t / ((T(1) + t) * (T(1) + t));
}

// d soft / d x and d soft_cond / d x of one element (the Jacobians are diagonal), soft =
// sigmoid(z / tau) and soft_cond = sigmoid(z_tilde / tau) of the same noise.
template <typename T>
struct BernoulliSlopes {
  T soft;
  T soft_cond;
};

template <typename T>
GRADEXT_INLINE BernoulliSlopes<T> bernoulli_conditional_slopes(T x, T noise, T cond_odds,
                                                               T inv_tau) {
  const BernoulliConditional<T> s = bernoulli_conditional(x, noise, cond_odds);
  return {sigmoid_slope(s.z * inv_tau) * inv_tau,
          sigmoid_slope(s.z_tilde * inv_tau) * inv_tau * s.slope};
}

// The gradient with respect to x of grad_soft * soft + grad_cond * soft_cond.
template <typename T>
GRADEXT_INLINE T bernoulli_conditional_grad(T x, T noise, T cond_odds, T inv_tau, T grad_soft,
                                            T grad_cond) {
  const BernoulliSlopes<T> d = bernoulli_conditional_slopes(x, noise, cond_odds, inv_tau);
  return grad_soft * d.soft + grad_cond * d.soft_cond;
}

// --- categorical ---

// q_c = E_c / (E_b theta_c) of a category c != b; inf when masked (theta_c = 0).
template <typename T>
GRADEXT_INLINE T conditional_ratio(T cond_exp_c, T cond_exp_b, T theta_c) {
  return cond_exp_c / (cond_exp_b * theta_c);
}

// d_c = -log1p(q_c) (0 for c = b, -inf for a masked category).
template <typename T>
GRADEXT_INLINE T conditional_offset(T q, bool is_b) {
  const T y = T(1) + q;
  const T d = q == T(INFINITY) ? -T(INFINITY) : -log1p_from_log(q, y, math::log(y));
  return is_b ? T(0) : d;
}

// d d_c / d log(theta_c) = q_c / (1 + q_c): 0 for c = b, 1 for a masked category.
template <typename T>
GRADEXT_INLINE T conditional_offset_slope(T q, bool is_b) {
  const T slope = q == T(INFINITY) ? T(1) : q / (T(1) + q);
  return is_b ? T(0) : slope;
}

}  // namespace gradext

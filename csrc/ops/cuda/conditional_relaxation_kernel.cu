// CUDA implementation of conditional_relaxation (maths: csrc/common/conditional_relaxation.h).
//
// Bernoulli: grid-stride over groups of 4 elements, one Philox block of z noise and one of
// conditional noise per group. Categorical: one thread per row, walking its categories in
// passes (maxima, sums, conditional offsets, writes) and drawing each element's noise again in
// each pass (Philox is cheaper than a round trip through memory). The forward publishes its
// (seed, offset) into rng_state on the device; the backward and the noise op read them there,
// so nothing waits for the host.
#include <ATen/core/Tensor.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/PhiloxUtils.cuh>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <cmath>

#include "common/conditional_relaxation.h"
#include "common/invalid_inputs.h"
#include "common/philox.h"
#include "common/random_transforms.h"
#include "common/scalar_math.h"
#include "ops/conditional_relaxation.h"
#include "ops/cuda/cuda_generator.h"
#include "ops/cuda/launch.cuh"
#include "ops/gaussian.h"
#include "ops/relaxed.h"

namespace gradext::cuda {
namespace {

__device__ __forceinline__ PhiloxStream stream_of(at::PhiloxCudaState philox,
                                                  int64_t* rng_state) {
  const auto [seed, offset] = at::cuda::philox::unpack(philox);
  if (rng_state != nullptr && blockIdx.x == 0 && threadIdx.x == 0) {
    rng_state[0] = static_cast<int64_t>(seed);
    rng_state[1] = static_cast<int64_t>(offset);
  }
  return PhiloxStream::make(seed, offset);
}

__device__ __forceinline__ uint32_t word_of(const Philox4x32& r, int j) {
  return j == 0 ? r.x : j == 1 ? r.y : j == 2 ? r.z : r.w;
}

template <typename T>
__device__ __forceinline__ T noise_of(uint32_t bits, bool categorical) {
  return categorical ? gumbel<T>(bits) : logistic<T>(bits);
}

// --- Bernoulli ---

// fn(i, z word, conditional word) for every element of a Bernoulli launch, 4 elements per
// thread (grid-stride): one Philox block of z noise and one of conditional noise per group.
template <typename Fn>
__device__ __forceinline__ void for_each_bernoulli_element(const PhiloxStream& stream,
                                                           int64_t numel, const Fn& fn) {
  const int64_t groups = (numel + 3) / 4;
  for (int64_t g = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; g < groups;
       g += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const Philox4x32 r = stream.block(static_cast<uint64_t>(g));
    const Philox4x32 rc = stream.block((kConditionalNoiseFirst >> 2) + static_cast<uint64_t>(g));
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t i = 4 * g + j;
      if (i >= numel) break;
      fn(i, word_of(r, j), word_of(rc, j));
    }
  }
}


template <typename scalar_t>
__global__ void bernoulli_conditional_forward_impl(const scalar_t* __restrict__ logits,
                                                   scalar_t* __restrict__ b,
                                                   scalar_t* __restrict__ soft,
                                                   scalar_t* __restrict__ soft_cond,
                                                   int64_t numel, double inv_tau_d,
                                                   at::PhiloxCudaState philox,
                                                   int64_t* rng_state) {
  using opmath_t = at::opmath_type<scalar_t>;
  const PhiloxStream stream = stream_of(philox, rng_state);
  const opmath_t inv_tau = math::saturated_inv_tau(inv_tau_d, opmath_t(0));
  for_each_bernoulli_element(stream, numel, [&](int64_t i, uint32_t z_word, uint32_t cond_word) {
    const BernoulliConditional<opmath_t> s =
        bernoulli_conditional(static_cast<opmath_t>(logits[i]), logistic<opmath_t>(z_word),
                              conditional_odds<opmath_t>(cond_word));
    b[i] = static_cast<scalar_t>(s.b);
    soft[i] = static_cast<scalar_t>(sigmoid(s.z * inv_tau));
    soft_cond[i] = static_cast<scalar_t>(sigmoid(s.z_tilde * inv_tau));
  });
}

template <typename scalar_t>
__global__ void bernoulli_conditional_backward_impl(const scalar_t* __restrict__ grad_soft,
                                                    const scalar_t* __restrict__ grad_cond,
                                                    const scalar_t* __restrict__ logits,
                                                    scalar_t* __restrict__ grad_logits,
                                                    int64_t numel, double inv_tau_d,
                                                    at::PhiloxCudaState philox) {
  using opmath_t = at::opmath_type<scalar_t>;
  const PhiloxStream stream = stream_of(philox, nullptr);
  const opmath_t inv_tau = math::saturated_inv_tau(inv_tau_d, opmath_t(0));
  for_each_bernoulli_element(stream, numel, [&](int64_t i, uint32_t z_word, uint32_t cond_word) {
    const opmath_t gs = grad_soft != nullptr ? static_cast<opmath_t>(grad_soft[i]) : opmath_t(0);
    const opmath_t gc = grad_cond != nullptr ? static_cast<opmath_t>(grad_cond[i]) : opmath_t(0);
    grad_logits[i] = static_cast<scalar_t>(bernoulli_conditional_grad(
        static_cast<opmath_t>(logits[i]), logistic<opmath_t>(z_word),
        conditional_odds<opmath_t>(cond_word), inv_tau, gs, gc));
  });
}

template <typename scalar_t>
__global__ void bernoulli_conditional_jvp_impl(const scalar_t* __restrict__ tangent,
                                               const scalar_t* __restrict__ logits,
                                               scalar_t* __restrict__ out_soft,
                                               scalar_t* __restrict__ out_cond, int64_t numel,
                                               double inv_tau_d, at::PhiloxCudaState philox) {
  using opmath_t = at::opmath_type<scalar_t>;
  const PhiloxStream stream = stream_of(philox, nullptr);
  const opmath_t inv_tau = math::saturated_inv_tau(inv_tau_d, opmath_t(0));
  for_each_bernoulli_element(stream, numel, [&](int64_t i, uint32_t z_word, uint32_t cond_word) {
    const BernoulliSlopes<opmath_t> d = bernoulli_conditional_slopes(
        static_cast<opmath_t>(logits[i]), logistic<opmath_t>(z_word),
        conditional_odds<opmath_t>(cond_word), inv_tau);
    const opmath_t v = static_cast<opmath_t>(tangent[i]);
    out_soft[i] = static_cast<scalar_t>(d.soft * v);
    out_cond[i] = static_cast<scalar_t>(d.soft_cond * v);
  });
}

// --- both noises, in the math type ---

template <typename opmath_t>
__global__ void conditional_noise_impl(opmath_t* __restrict__ noise,
                                       opmath_t* __restrict__ cond_noise, int64_t numel,
                                       bool categorical, at::PhiloxCudaState philox) {
  const PhiloxStream stream = stream_of(philox, nullptr);
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < numel;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    noise[i] = noise_of<opmath_t>(philox_word_at(stream, static_cast<uint64_t>(i)), categorical);
    cond_noise[i] = noise_of<opmath_t>(
        philox_word_at(stream, kConditionalNoiseFirst + static_cast<uint64_t>(i)), categorical);
  }
}

// --- categorical: one thread per row ---

template <typename opmath_t>
struct RowState {
  int64_t best = 0;     // argmax of s = x + g (ties to the lowest index)
  opmath_t s_max;       // max s
  opmath_t inv_s_sum;   // 1 / sum exp((s - max s) / tau)
  opmath_t x_max;
  opmath_t inv_x_sum;   // 1 / sum exp(x - max x)
  opmath_t cond_exp_b;  // E at b
  opmath_t inv_d_sum;   // 1 / sum exp(d / tau)
  bool valid;
};

template <typename opmath_t>
__device__ __forceinline__ opmath_t gumbel_at(const PhiloxStream& stream, uint64_t index) {
  return gumbel<opmath_t>(philox_word_at(stream, index));
}

template <typename opmath_t>
__device__ __forceinline__ opmath_t cond_exp_at(const PhiloxStream& stream, uint64_t index) {
  return exponential<opmath_t>(philox_word_at(stream, kConditionalNoiseFirst + index));
}

// soft_c, soft_cond_c and what the backward needs of category c, given its row's state.
template <typename opmath_t>
struct CategoryValues {
  opmath_t soft, cond, theta, ratio;
};

template <typename scalar_t, typename opmath_t>
__device__ __forceinline__ CategoryValues<opmath_t> category_values(
    const scalar_t* x, int64_t c, uint64_t first, const PhiloxStream& stream,
    const RowState<opmath_t>& st, opmath_t inv_tau) {
  const opmath_t xc = static_cast<opmath_t>(x[c]);
  const opmath_t s = xc + gumbel_at<opmath_t>(stream, first + c);
  const opmath_t theta = math::exp(xc - st.x_max) * st.inv_x_sum;
  const opmath_t q = conditional_ratio(cond_exp_at<opmath_t>(stream, first + c), st.cond_exp_b, theta);
  const opmath_t d = conditional_offset(q, c == st.best);
  return {math::exp((s - st.s_max) * inv_tau) * st.inv_s_sum,
          math::exp(d * inv_tau) * st.inv_d_sum, theta, q};
}

template <typename scalar_t, typename opmath_t>
__device__ RowState<opmath_t> row_state(const scalar_t* x, int64_t C, uint64_t first,
                                        const PhiloxStream& stream, opmath_t inv_tau) {
  RowState<opmath_t> st;
  st.s_max = static_cast<opmath_t>(x[0]) + gumbel_at<opmath_t>(stream, first);
  st.x_max = static_cast<opmath_t>(x[0]);
  for (int64_t c = 1; c < C; ++c) {
    const opmath_t xc = static_cast<opmath_t>(x[c]);
    const opmath_t s = xc + gumbel_at<opmath_t>(stream, first + c);
    if (s > st.s_max) {
      st.s_max = s;
      st.best = c;
    }
    st.x_max = xc > st.x_max ? xc : st.x_max;
  }
  opmath_t s_sum = 0;
  opmath_t x_sum = 0;
  for (int64_t c = 0; c < C; ++c) {
    const opmath_t xc = static_cast<opmath_t>(x[c]);
    const opmath_t s = xc + gumbel_at<opmath_t>(stream, first + c);
    s_sum += math::exp((s - st.s_max) * inv_tau);
    x_sum += math::exp(xc - st.x_max);
  }
  st.valid = softmax_row_is_valid(s_sum);
  st.inv_s_sum = opmath_t(1) / s_sum;
  st.inv_x_sum = opmath_t(1) / x_sum;
  st.cond_exp_b = cond_exp_at<opmath_t>(stream, first + st.best);
  st.inv_d_sum = opmath_t(1);  // category_values' cond is exp(d / tau) until it is known
  opmath_t d_sum = 0;
  for (int64_t c = 0; c < C; ++c) d_sum += category_values(x, c, first, stream, st, inv_tau).cond;
  st.inv_d_sum = opmath_t(1) / d_sum;
  return st;
}

template <typename scalar_t>
__global__ void categorical_conditional_forward_impl(const scalar_t* __restrict__ logits,
                                                     scalar_t* __restrict__ b,
                                                     scalar_t* __restrict__ soft,
                                                     scalar_t* __restrict__ soft_cond,
                                                     int64_t rows, int64_t C, double inv_tau_d,
                                                     at::PhiloxCudaState philox,
                                                     int64_t* rng_state) {
  using opmath_t = at::opmath_type<scalar_t>;
  const PhiloxStream stream = stream_of(philox, rng_state);
  const opmath_t inv_tau = math::saturated_inv_tau(inv_tau_d, opmath_t(0));
  for (int64_t row = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; row < rows;
       row += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const scalar_t* x = logits + row * C;
    const uint64_t first = static_cast<uint64_t>(row * C);
    const RowState<opmath_t> st = row_state(x, C, first, stream, inv_tau);
    for (int64_t c = 0; c < C; ++c) {
      const CategoryValues<opmath_t> v = category_values(x, c, first, stream, st, inv_tau);
      const scalar_t nan = quiet_nan<scalar_t>();
      b[row * C + c] = st.valid ? static_cast<scalar_t>(c == st.best ? 1 : 0) : nan;
      soft[row * C + c] = st.valid ? static_cast<scalar_t>(v.soft) : nan;
      soft_cond[row * C + c] = st.valid ? static_cast<scalar_t>(v.cond) : nan;
    }
  }
}

// The CPU kernel's formula (conditional_relaxation_cpu_impl.h): soft's softmax Jacobian, and
// for soft_cond softmax's Jacobian in d, d's slope in log(theta), log(theta)'s Jacobian in x.
template <typename scalar_t>
__global__ void categorical_conditional_backward_impl(const scalar_t* __restrict__ grad_soft,
                                                      const scalar_t* __restrict__ grad_cond,
                                                      const scalar_t* __restrict__ logits,
                                                      scalar_t* __restrict__ grad_logits,
                                                      int64_t rows, int64_t C, double inv_tau_d,
                                                      at::PhiloxCudaState philox) {
  using opmath_t = at::opmath_type<scalar_t>;
  const PhiloxStream stream = stream_of(philox, nullptr);
  const opmath_t inv_tau = math::saturated_inv_tau(inv_tau_d, opmath_t(0));
  auto load = [](const scalar_t* g, int64_t i) {
    return g != nullptr ? static_cast<opmath_t>(g[i]) : opmath_t(0);
  };
  for (int64_t row = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; row < rows;
       row += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const scalar_t* x = logits + row * C;
    const uint64_t first = static_cast<uint64_t>(row * C);
    const RowState<opmath_t> st = row_state(x, C, first, stream, inv_tau);
    opmath_t dot_soft = 0;
    opmath_t dot_cond = 0;
    for (int64_t c = 0; c < C; ++c) {
      const CategoryValues<opmath_t> v = category_values(x, c, first, stream, st, inv_tau);
      dot_soft += load(grad_soft, row * C + c) * v.soft;
      dot_cond += load(grad_cond, row * C + c) * v.cond;
    }
    auto h_of = [&](int64_t c, const CategoryValues<opmath_t>& v) {
      const opmath_t slope = conditional_offset_slope(v.ratio, c == st.best);
      return v.cond * (load(grad_cond, row * C + c) - dot_cond) * inv_tau * slope;
    };
    opmath_t h_sum = 0;
    for (int64_t c = 0; c < C; ++c) {
      h_sum += h_of(c, category_values(x, c, first, stream, st, inv_tau));
    }
    for (int64_t c = 0; c < C; ++c) {
      const CategoryValues<opmath_t> v = category_values(x, c, first, stream, st, inv_tau);
      grad_logits[row * C + c] = static_cast<scalar_t>(
          v.soft * (load(grad_soft, row * C + c) - dot_soft) * inv_tau + h_of(c, v) -
          v.theta * h_sum);
    }
  }
}

// The CPU kernel's formula (categorical_conditional_jvp_rows): soft (v - <v, soft>) / tau and
// cond (delta - <delta, cond>) / tau, delta = slope (v - <theta, v>).
template <typename scalar_t>
__global__ void categorical_conditional_jvp_impl(const scalar_t* __restrict__ tangent,
                                                 const scalar_t* __restrict__ logits,
                                                 scalar_t* __restrict__ out_soft,
                                                 scalar_t* __restrict__ out_cond, int64_t rows,
                                                 int64_t C, double inv_tau_d,
                                                 at::PhiloxCudaState philox) {
  using opmath_t = at::opmath_type<scalar_t>;
  const PhiloxStream stream = stream_of(philox, nullptr);
  const opmath_t inv_tau = math::saturated_inv_tau(inv_tau_d, opmath_t(0));
  for (int64_t row = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; row < rows;
       row += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const scalar_t* x = logits + row * C;
    const scalar_t* v = tangent + row * C;
    const uint64_t first = static_cast<uint64_t>(row * C);
    const RowState<opmath_t> st = row_state(x, C, first, stream, inv_tau);
    opmath_t dot_soft = 0;
    opmath_t dot_theta = 0;
    for (int64_t c = 0; c < C; ++c) {
      const CategoryValues<opmath_t> cv = category_values(x, c, first, stream, st, inv_tau);
      dot_soft += static_cast<opmath_t>(v[c]) * cv.soft;
      dot_theta += static_cast<opmath_t>(v[c]) * cv.theta;
    }
    auto delta_of = [&](int64_t c, const CategoryValues<opmath_t>& cv) {
      return conditional_offset_slope(cv.ratio, c == st.best) *
             (static_cast<opmath_t>(v[c]) - dot_theta);
    };
    opmath_t dot_cond = 0;
    for (int64_t c = 0; c < C; ++c) {
      const CategoryValues<opmath_t> cv = category_values(x, c, first, stream, st, inv_tau);
      dot_cond += delta_of(c, cv) * cv.cond;
    }
    for (int64_t c = 0; c < C; ++c) {
      const CategoryValues<opmath_t> cv = category_values(x, c, first, stream, st, inv_tau);
      out_soft[row * C + c] =
          static_cast<scalar_t>(cv.soft * (static_cast<opmath_t>(v[c]) - dot_soft) * inv_tau);
      out_cond[row * C + c] =
          static_cast<scalar_t>(cv.cond * (delta_of(c, cv) - dot_cond) * inv_tau);
    }
  }
}

// --- host ---

using Outputs = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

// The pointer form of PhiloxCudaState (the one CUDA graph capture uses): kernels read seed and
// offset from a forward's rng_state on the device. They only read through these pointers.
at::PhiloxCudaState state_of(const at::Tensor& rng_state, const at::Tensor& like, const char* op) {
  ops::check_rng_state(rng_state, like.device(), op);
  auto* state = const_cast<int64_t*>(rng_state.const_data_ptr<int64_t>());
  return at::PhiloxCudaState(state, state + 1, 0);
}

Outputs forward(const char* op, const at::Tensor& logits, const at::Tensor& tau, bool categorical,
                const std::optional<at::Generator>& generator,
                const std::optional<at::PhiloxCudaState>& seeded) {
  c10::cuda::CUDAGuard guard(logits.device());
  const ops::ConditionalRelaxationProblem p =
      ops::make_conditional_relaxation_problem(op, logits, ops::tau_value(op, tau), categorical);
  at::Tensor b = at::empty_like(p.logits);
  at::Tensor soft = at::empty_like(p.logits);
  at::Tensor soft_cond = at::empty_like(p.logits);
  at::Tensor rng_state = at::empty({2}, logits.options().dtype(at::kLong));
  const int64_t numel = p.logits.numel();
  if (numel == 0) {
    rng_state.zero_();
    return {b, soft, soft_cond, rng_state};
  }
  const at::PhiloxCudaState philox =
      seeded.has_value() ? *seeded : next_philox_state(generator, logits.device().index());
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, b.scalar_type(),
                                  "conditional_relaxation_cuda", [&] {
    const auto* x = p.logits.const_data_ptr<scalar_t>();
    auto* state = rng_state.mutable_data_ptr<int64_t>();
    if (categorical) {
      categorical_conditional_forward_impl<scalar_t><<<grid_for(p.rows), kThreads, 0, stream>>>(
          x, b.mutable_data_ptr<scalar_t>(), soft.mutable_data_ptr<scalar_t>(),
          soft_cond.mutable_data_ptr<scalar_t>(), p.rows, p.categories, p.inv_tau, philox, state);
    } else {
      bernoulli_conditional_forward_impl<scalar_t>
          <<<grid_for((numel + 3) / 4), kThreads, 0, stream>>>(
              x, b.mutable_data_ptr<scalar_t>(), soft.mutable_data_ptr<scalar_t>(),
              soft_cond.mutable_data_ptr<scalar_t>(), numel, p.inv_tau, philox, state);
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {b, soft, soft_cond, rng_state};
}

Outputs sample_op(const at::Tensor& logits, const at::Tensor& tau, bool categorical,
                  std::optional<at::Generator> generator) {
  return forward("conditional_relaxation", logits, tau, categorical, generator, std::nullopt);
}

Outputs seeded_op(const at::Tensor& logits, const at::Tensor& tau, bool categorical,
                  int64_t seed, int64_t offset) {
  return forward("_conditional_relaxation_seeded", logits, tau, categorical, std::nullopt,
                 at::PhiloxCudaState(static_cast<uint64_t>(seed), static_cast<uint64_t>(offset)));
}

std::tuple<at::Tensor, at::Tensor> noise_op(const at::Tensor& logits, const at::Tensor& rng_state,
                                            bool categorical) {
  const char* op = "_conditional_relaxation_noise";
  c10::cuda::CUDAGuard guard(logits.device());
  // The noise does not depend on tau: 1.
  const ops::ConditionalRelaxationProblem p =
      ops::make_conditional_relaxation_problem(op, logits, 1.0, categorical);
  const at::PhiloxCudaState philox = state_of(rng_state, logits, op);
  const auto options = p.logits.options().dtype(ops::noise_dtype(p.logits.scalar_type()));
  at::Tensor noise = at::empty(p.logits.sizes(), options);
  at::Tensor cond_noise = at::empty(p.logits.sizes(), options);
  const int64_t numel = p.logits.numel();
  if (numel == 0) return {noise, cond_noise};
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(noise.scalar_type(), "conditional_relaxation_noise_cuda", [&] {
    conditional_noise_impl<scalar_t><<<grid_for(numel), kThreads, 0, stream>>>(
        noise.mutable_data_ptr<scalar_t>(), cond_noise.mutable_data_ptr<scalar_t>(), numel,
        categorical, philox);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {noise, cond_noise};
}

at::Tensor backward_op(const std::optional<at::Tensor>& grad_soft,
                       const std::optional<at::Tensor>& grad_soft_cond, const at::Tensor& logits,
                       const at::Tensor& tau, const at::Tensor& rng_state, bool categorical) {
  const char* op = "_conditional_relaxation_backward";
  c10::cuda::CUDAGuard guard(logits.device());
  const ops::ConditionalRelaxationProblem p =
      ops::make_conditional_relaxation_problem(op, logits, ops::tau_value(op, tau), categorical);
  const ops::ConditionalRelaxationGrads grads =
      ops::check_conditional_relaxation_grads(p, grad_soft, grad_soft_cond);
  const at::PhiloxCudaState philox = state_of(rng_state, logits, op);
  at::Tensor grad_logits = at::empty_like(p.logits);
  const int64_t numel = p.logits.numel();
  if (numel == 0) return grad_logits;
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.logits.scalar_type(),
                                  "conditional_relaxation_backward_cuda", [&] {
    const scalar_t* gs = grads.soft.defined() ? grads.soft.const_data_ptr<scalar_t>() : nullptr;
    const scalar_t* gc =
        grads.soft_cond.defined() ? grads.soft_cond.const_data_ptr<scalar_t>() : nullptr;
    const auto* x = p.logits.const_data_ptr<scalar_t>();
    auto* out = grad_logits.mutable_data_ptr<scalar_t>();
    if (categorical) {
      categorical_conditional_backward_impl<scalar_t><<<grid_for(p.rows), kThreads, 0, stream>>>(
          gs, gc, x, out, p.rows, p.categories, p.inv_tau, philox);
    } else {
      bernoulli_conditional_backward_impl<scalar_t>
          <<<grid_for((numel + 3) / 4), kThreads, 0, stream>>>(gs, gc, x, out, numel, p.inv_tau,
                                                               philox);
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return grad_logits;
}

std::tuple<at::Tensor, at::Tensor> jvp_op(const at::Tensor& tangent, const at::Tensor& logits,
                                          const at::Tensor& tau, const at::Tensor& rng_state,
                                          bool categorical) {
  const char* op = "_conditional_relaxation_jvp";
  c10::cuda::CUDAGuard guard(logits.device());
  const ops::ConditionalRelaxationProblem p =
      ops::make_conditional_relaxation_problem(op, logits, ops::tau_value(op, tau), categorical);
  const at::Tensor v = ops::check_conditional_relaxation_tangent(p, tangent);
  const at::PhiloxCudaState philox = state_of(rng_state, logits, op);
  at::Tensor out_soft = at::empty_like(p.logits);
  at::Tensor out_cond = at::empty_like(p.logits);
  const int64_t numel = p.logits.numel();
  if (numel == 0) return {out_soft, out_cond};
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.logits.scalar_type(),
                                  "conditional_relaxation_jvp_cuda", [&] {
    const auto* vp = v.const_data_ptr<scalar_t>();
    const auto* x = p.logits.const_data_ptr<scalar_t>();
    auto* os = out_soft.mutable_data_ptr<scalar_t>();
    auto* oc = out_cond.mutable_data_ptr<scalar_t>();
    if (categorical) {
      categorical_conditional_jvp_impl<scalar_t><<<grid_for(p.rows), kThreads, 0, stream>>>(
          vp, x, os, oc, p.rows, p.categories, p.inv_tau, philox);
    } else {
      bernoulli_conditional_jvp_impl<scalar_t><<<grid_for((numel + 3) / 4), kThreads, 0, stream>>>(
          vp, x, os, oc, numel, p.inv_tau, philox);
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {out_soft, out_cond};
}

}  // namespace
}  // namespace gradext::cuda

TORCH_LIBRARY_IMPL(gradext, CUDA, m) {
  using namespace gradext::cuda;
  m.impl("conditional_relaxation", &sample_op);
  m.impl("_conditional_relaxation_seeded", &seeded_op);
  m.impl("_conditional_relaxation_noise", &noise_op);
  m.impl("_conditional_relaxation_backward", &backward_op);
  m.impl("_conditional_relaxation_jvp", &jvp_op);
}

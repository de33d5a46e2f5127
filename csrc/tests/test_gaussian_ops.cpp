// C++ tests of the registered gaussian_rsample ops through the dispatcher (no Python): the CPU
// kernel's tiled, vectorized noise equals the scalar reference of the random-number contract,
// results do not depend on the CPU kernel variant, the fused backward follows its formula, and
// the replay op redraws a forward's noise.
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <cstdio>
#include <string>
#include <tuple>

#include "common/philox.h"
#include "common/random_transforms.h"
#include "ops/cpu/cpu_isa.h"

namespace {

int g_passed = 0;
int g_failed = 0;

void check(bool ok, const std::string& what) {
  if (ok) {
    ++g_passed;
  } else {
    ++g_failed;
    std::printf("FAILED: %s\n", what.c_str());
  }
}

std::tuple<at::Tensor, at::Tensor> seeded(const at::Tensor& mu, const at::Tensor& logvar,
                                          std::optional<int64_t> k, int64_t seed, int64_t offset) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("gradext::_gaussian_rsample_seeded", "")
                       .typed<std::tuple<at::Tensor, at::Tensor>(
                           const at::Tensor&, const at::Tensor&, std::optional<int64_t>, int64_t,
                           int64_t)>();
  return op.call(mu, logvar, k, seed, offset);
}

std::tuple<at::Tensor, at::Tensor> backward(const at::Tensor& grad, const at::Tensor& logvar,
                                            const at::Tensor& state, at::IntArrayRef mu_size,
                                            bool has_sample_dim, bool need_grad_mu = true) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("gradext::_gaussian_rsample_backward", "")
                       .typed<std::tuple<at::Tensor, at::Tensor>(
                           const at::Tensor&, const at::Tensor&, const at::Tensor&,
                           at::IntArrayRef, bool, bool)>();
  return op.call(grad, logvar, state, mu_size, has_sample_dim, need_grad_mu);
}

std::tuple<at::Tensor, at::Tensor> replay(const at::Tensor& mu, const at::Tensor& logvar,
                                          std::optional<int64_t> k, const at::Tensor& state) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("gradext::_gaussian_rsample_replay", "")
                       .typed<std::tuple<at::Tensor, at::Tensor>(
                           const at::Tensor&, const at::Tensor&, std::optional<int64_t>,
                           const at::Tensor&)>();
  return op.call(mu, logvar, k, state);
}

// The kernel's noise equals normal_at(stream, i) element by element, for every CPU variant.
void test_kernel_noise_matches_scalar_contract() {
  const int64_t n = 3 * 1024 + 7;  // several tiles and a ragged end
  const auto stream = gradext::PhiloxStream::make(77, 12);
  at::Tensor expected = at::empty({2, n}, at::kFloat);
  float* e = expected.data_ptr<float>();
  for (int64_t i = 0; i < 2 * n; ++i) e[i] = gradext::normal_at<float>(stream, i);
  const at::Tensor zeros = at::zeros({n}, at::kFloat);
  for (const char* isa : {"default", "avx2", "avx512"}) {
    try {
      gradext::cpu::set_isa(isa);
    } catch (const c10::Error&) {
      continue;  // this CPU lacks the variant
    }
    const at::Tensor z = std::get<0>(seeded(zeros, zeros, 2, 77, 12));
    check(at::equal(z, expected), std::string("CPU kernel noise equals the scalar contract: ") + isa);
  }
  gradext::cpu::set_isa("auto");
}

void test_forward_formula_and_broadcast() {
  const at::Tensor mu = at::randn({5, 8}, at::kDouble);
  const at::Tensor logvar = at::randn({8}, at::kDouble);
  const at::Tensor z = std::get<0>(seeded(mu, logvar, 3, 5, 0));
  const at::Tensor eps = std::get<0>(seeded(at::zeros({5, 8}, at::kDouble),
                                            at::zeros({5, 8}, at::kDouble), 3, 5, 0));
  check(z.sizes() == at::IntArrayRef({3, 5, 8}), "forward shape (K, *broadcast)");
  check(at::allclose(z, mu + at::exp(0.5 * logvar) * eps, 1e-13, 1e-13),
        "forward equals mu + exp(logvar / 2) * eps");
}

void test_backward_formula() {
  const at::Tensor mu = at::randn({6, 4}, at::kDouble);
  const at::Tensor logvar = at::randn({6, 4}, at::kDouble);
  auto [z, state] = seeded(mu, logvar, 3, 9, 4);
  const at::Tensor grad = at::randn({3, 6, 4}, at::kDouble);
  auto [grad_mu, grad_logvar] = backward(grad, logvar, state, mu.sizes(), true);
  const at::Tensor eps = (z - mu) / at::exp(0.5 * logvar);
  check(at::allclose(grad_mu, grad.sum(0), 1e-12, 1e-12), "backward: d/dmu = sum_k grad");
  check(at::allclose(grad_logvar, (grad * eps).sum(0) * 0.5 * at::exp(0.5 * logvar), 1e-12,
                     1e-12),
        "backward: d/dlogvar = sum_k grad * eps * exp(logvar / 2) / 2");
}

// The replay op (double backward's source of the per-sample noise) redraws a forward's sample
// bitwise from the rng_state that forward returned, with mu broadcast by a zero stride too.
void test_replay_redraws_the_forward() {
  const at::Tensor mu = at::randn({5, 8}, at::kFloat);
  const at::Tensor logvar = at::randn({8}, at::kFloat);
  auto [z, state] = seeded(mu, logvar, 3, 21, 8);
  auto [again, state_again] = replay(mu, logvar, 3, state);
  check(at::equal(z, again) && at::equal(state, state_again),
        "replay redraws the forward's sample and returns its rng_state");
  const at::Tensor zero_mu = at::zeros({}, at::kFloat).expand({5, 8});
  const at::Tensor scaled = std::get<0>(replay(zero_mu, logvar, 3, state));
  const at::Tensor scaled_dense =
      std::get<0>(seeded(at::zeros({5, 8}, at::kFloat), logvar, 3, 21, 8));
  check(at::equal(scaled, scaled_dense), "replay with a zero-stride mu equals a dense mu");
}

void test_empty() {
  const at::Tensor empty = at::zeros({0, 3}, at::kFloat);
  const at::Tensor z = std::get<0>(seeded(empty, empty, 4, 1, 0));
  check(z.sizes() == at::IntArrayRef({4, 0, 3}), "empty input gives an empty output");
}

}  // namespace

int main() {
  test_kernel_noise_matches_scalar_contract();
  test_forward_formula_and_broadcast();
  test_backward_formula();
  test_replay_redraws_the_forward();
  test_empty();
  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}

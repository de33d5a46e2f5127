#include "ops/gaussian.h"

#include <ATen/ATen.h>
#include <ATen/ExpandUtils.h>
#include <torch/library.h>

#include "ops/broadcast_layout.h"

namespace gradext::ops {
namespace {

void check_floating(const at::Tensor& t, const char* name) {
  TORCH_CHECK_TYPE(at::isFloatingType(t.scalar_type()), "gaussian_rsample: ", name,
              " must be a floating-point tensor, got dtype ", t.scalar_type());
}

}  // namespace

GaussianForwardProblem make_gaussian_forward_problem(const at::Tensor& mu,
                                                     const at::Tensor& logvar,
                                                     std::optional<int64_t> num_samples) {
  check_floating(mu, "mu");
  check_floating(logvar, "logvar");
  TORCH_CHECK(mu.device() == logvar.device(), "gaussian_rsample: mu is on ", mu.device(),
              " but logvar is on ", logvar.device(), "; both must be on the same device");
  TORCH_CHECK_VALUE(!num_samples.has_value() || *num_samples >= 1,
                    "gaussian_rsample: num_samples must be None or >= 1, got ",
                    num_samples.value_or(0));

  GaussianForwardProblem p;
  const std::vector<int64_t> sample_shape =
      broadcast_parameter_shape("gaussian_rsample", "mu", mu, "logvar", logvar);
  const at::ScalarType dtype = at::promote_types(mu.scalar_type(), logvar.scalar_type());
  p.mu = mu.to(dtype);
  p.logvar = logvar.to(dtype);
  p.num_samples = num_samples.value_or(1);
  p.sample_numel = c10::multiply_integers(sample_shape);
  if (num_samples.has_value()) p.out_shape.push_back(*num_samples);
  p.out_shape.insert(p.out_shape.end(), sample_shape.begin(), sample_shape.end());
  std::vector<at::Tensor> inputs{p.mu, p.logvar};
  p.layout = make_layout_2d(sample_shape, inputs);
  p.mu = inputs[0];
  p.logvar = inputs[1];
  return p;
}

GaussianBackwardProblem make_gaussian_backward_problem(const at::Tensor& grad,
                                                       const at::Tensor& logvar,
                                                       const at::Tensor& rng_state,
                                                       at::IntArrayRef mu_size,
                                                       bool has_sample_dim) {
  check_floating(grad, "grad");
  check_floating(logvar, "logvar");
  TORCH_CHECK(grad.device() == logvar.device(), "_gaussian_rsample_backward: grad (",
              grad.device(), ") and logvar (", logvar.device(), ") must be on one device");
  check_rng_state(rng_state, logvar.device(), "_gaussian_rsample_backward");

  GaussianBackwardProblem p;
  p.sample_shape = at::infer_size(mu_size, logvar.sizes());
  std::vector<int64_t> expected_grad_shape;
  if (has_sample_dim) {
    TORCH_CHECK(grad.dim() == static_cast<int64_t>(p.sample_shape.size()) + 1,
                "_gaussian_rsample_backward: grad must have a leading sample dimension, got "
                "shape ",
                grad.sizes());
    p.num_samples = grad.size(0);
    expected_grad_shape.push_back(p.num_samples);
  }
  expected_grad_shape.insert(expected_grad_shape.end(), p.sample_shape.begin(),
                             p.sample_shape.end());
  TORCH_CHECK(grad.sizes().equals(expected_grad_shape), "_gaussian_rsample_backward: grad of ",
              "shape ", grad.sizes(), " does not match the forward output shape ",
              at::IntArrayRef(expected_grad_shape));
  const at::ScalarType dtype = grad.scalar_type();
  p.grad = grad.contiguous();
  p.logvar = logvar.to(dtype);
  p.sample_numel = c10::multiply_integers(p.sample_shape);
  std::vector<at::Tensor> inputs{p.logvar};
  p.layout = make_layout_2d(p.sample_shape, inputs);
  p.logvar = inputs[0];
  return p;
}

void check_rng_state(const at::Tensor& rng_state, const at::Device& device, const char* op) {
  TORCH_CHECK(rng_state.device() == device, op, ": rng_state is on ", rng_state.device(),
              " but the other tensors are on ", device);
  TORCH_CHECK(rng_state.scalar_type() == at::kLong && rng_state.numel() == 2 &&
                  rng_state.is_contiguous(),
              op, ": rng_state must be the int64 tensor of 2 elements returned by the "
              "forward (contiguous), got ", rng_state.scalar_type(), " of shape ",
              rng_state.sizes(), rng_state.is_contiguous() ? "" : " (not contiguous)");
}

at::Tensor empty_grad_mu(const GaussianBackwardProblem& p, bool need_grad_mu) {
  return at::empty(need_grad_mu ? at::IntArrayRef(p.sample_shape) : at::IntArrayRef({0}),
                   p.grad.options());
}

std::tuple<at::Tensor, at::Tensor> reduce_gaussian_grads(const at::Tensor& grad_mu_full,
                                                         const at::Tensor& grad_logvar_full,
                                                         at::IntArrayRef mu_size,
                                                         at::IntArrayRef logvar_size,
                                                         bool need_grad_mu) {
  return {need_grad_mu ? at::sum_to(grad_mu_full, mu_size) : grad_mu_full,
          at::sum_to(grad_logvar_full, logvar_size)};
}

at::Tensor make_cpu_rng_state(uint64_t seed, uint64_t offset) {
  at::Tensor state = at::empty({2}, at::TensorOptions().dtype(at::kLong));
  // Through the pointer: Tensor::operator[] and a scalar fill dispatch two ops per element.
  int64_t* values = state.mutable_data_ptr<int64_t>();
  values[0] = static_cast<int64_t>(seed);
  values[1] = static_cast<int64_t>(offset);
  return state;
}

}  // namespace gradext::ops

TORCH_LIBRARY_FRAGMENT(gradext, m) {
  // The fake kernels and autograd formulas of these ops live in this Python module.
  m.set_python_module("gradext.gaussian");
  // z = mu + exp(logvar / 2) * eps. Returns (z, rng_state): rng_state is the int64 (seed, offset)
  // pair the noise came from, all that backward needs to recompute eps.
  m.def(
      "gaussian_rsample(Tensor mu, Tensor logvar, SymInt? num_samples=None, *, "
      "Generator? generator=None) -> (Tensor, Tensor)",
      {at::Tag::nondeterministic_seeded});
  // The same with the Philox (seed, offset) given: deterministic, for tests and for
  // cross-device comparisons of the noise.
  m.def(
      "_gaussian_rsample_seeded(Tensor mu, Tensor logvar, SymInt? num_samples, int seed, "
      "int offset) -> (Tensor, Tensor)");
  // The same with the (seed, offset) read from a forward's rng_state: draws that forward's noise
  // again, on the device, with no host synchronization. Its use: the derivatives of the fused
  // backward (double backward), which need the per-sample noise the backward never keeps.
  m.def(
      "_gaussian_rsample_replay(Tensor mu, Tensor logvar, SymInt? num_samples, Tensor rng_state) "
      "-> (Tensor, Tensor)");
  // Fused backward: (grad_mu, grad_logvar) in the shapes of mu and logvar, in grad's dtype.
  // With need_grad_mu false, grad_mu comes back empty and is neither accumulated nor written:
  // with one sample d z / d mu = 1, so the caller's grad_mu is grad itself, and the kernel's
  // traffic drops by one output.
  m.def(
      "_gaussian_rsample_backward(Tensor grad, Tensor logvar, Tensor rng_state, SymInt[] mu_size, "
      "bool has_sample_dim, bool need_grad_mu) -> (Tensor, Tensor)");
}

#include "ops/gaussian.h"

#include <ATen/ATen.h>
#include <ATen/ExpandUtils.h>
#include <torch/library.h>

#include <string>

#include "ops/autograd_support.h"
#include "ops/broadcast_layout.h"

namespace gradext::ops {
namespace {

void check_floating(const char* op, const at::Tensor& t, const char* name) {
  TORCH_CHECK_TYPE(at::isFloatingType(t.scalar_type()), op, ": ", name,
                   " must be a floating-point tensor, got dtype ", t.scalar_type());
}

}  // namespace

GaussianForwardProblem make_gaussian_forward_problem(const GaussianNames& names,
                                                     const at::Tensor& mean,
                                                     const at::Tensor& spread,
                                                     std::optional<int64_t> num_samples) {
  check_floating(names.op, mean, names.mean);
  check_floating(names.op, spread, names.spread);
  TORCH_CHECK(mean.device() == spread.device(), names.op, ": ", names.mean, " is on ",
              mean.device(), " but ", names.spread, " is on ", spread.device(),
              "; both must be on the same device");
  TORCH_CHECK_VALUE(!num_samples.has_value() || *num_samples >= 1, names.op,
                    ": num_samples must be None or >= 1, got ", num_samples.value_or(0));

  GaussianForwardProblem p;
  const std::vector<int64_t> sample_shape =
      broadcast_parameter_shape(names.op, names.mean, mean, names.spread, spread);
  const at::ScalarType dtype = at::promote_types(mean.scalar_type(), spread.scalar_type());
  p.mean = as_dtype(mean, dtype);
  p.spread = as_dtype(spread, dtype);
  p.num_samples = num_samples.value_or(1);
  p.sample_numel = c10::multiply_integers(sample_shape);
  if (num_samples.has_value()) p.out_shape.push_back(*num_samples);
  p.out_shape.insert(p.out_shape.end(), sample_shape.begin(), sample_shape.end());
  std::vector<at::Tensor> inputs{p.mean, p.spread};
  p.layout = make_layout_2d(sample_shape, inputs);
  p.mean = inputs[0];
  p.spread = inputs[1];
  return p;
}

GaussianBackwardProblem make_gaussian_backward_problem(const GaussianNames& names,
                                                       const at::Tensor& grad,
                                                       const at::Tensor& spread,
                                                       const at::Tensor& rng_state,
                                                       at::IntArrayRef mean_size,
                                                       bool has_sample_dim) {
  const std::string op = std::string("_") + names.op + "_backward";
  check_floating(op.c_str(), grad, "grad");
  check_floating(op.c_str(), spread, names.spread);
  TORCH_CHECK(grad.device() == spread.device(), op, ": grad (", grad.device(), ") and ",
              names.spread, " (", spread.device(), ") must be on one device");
  check_rng_state(rng_state, spread.device(), op.c_str());

  GaussianBackwardProblem p;
  p.sample_shape = at::infer_size(mean_size, spread.sizes());
  std::vector<int64_t> expected_grad_shape;
  if (has_sample_dim) {
    TORCH_CHECK(grad.dim() == static_cast<int64_t>(p.sample_shape.size()) + 1, op,
                ": grad must have a leading sample dimension, got shape ", grad.sizes());
    p.num_samples = grad.size(0);
    expected_grad_shape.push_back(p.num_samples);
  }
  expected_grad_shape.insert(expected_grad_shape.end(), p.sample_shape.begin(),
                             p.sample_shape.end());
  TORCH_CHECK(grad.sizes().equals(expected_grad_shape), op, ": grad of shape ", grad.sizes(),
              " does not match the forward output shape ", at::IntArrayRef(expected_grad_shape));
  const at::ScalarType dtype = grad.scalar_type();
  p.grad = grad.contiguous();
  p.spread = as_dtype(spread, dtype);
  p.sample_numel = c10::multiply_integers(p.sample_shape);
  std::vector<at::Tensor> inputs{p.spread};
  p.layout = make_layout_2d(p.sample_shape, inputs);
  p.spread = inputs[0];
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

at::Tensor empty_grad_mean(const GaussianBackwardProblem& p, bool need_grad_mean) {
  return at::empty(need_grad_mean ? at::IntArrayRef(p.sample_shape) : at::IntArrayRef({0}),
                   p.grad.options());
}

std::tuple<at::Tensor, at::Tensor> reduce_gaussian_grads(const at::Tensor& grad_mean_full,
                                                         const at::Tensor& grad_spread_full,
                                                         at::IntArrayRef mean_size,
                                                         at::IntArrayRef spread_size,
                                                         bool need_grad_mean) {
  return {need_grad_mean ? at::sum_to(grad_mean_full, mean_size) : grad_mean_full,
          at::sum_to(grad_spread_full, spread_size)};
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
  // The scale parametrization, z = loc + scale * eps (torch.distributions.Normal's), with the
  // same four ops and the same noise: for one (seed, offset), normal_rsample(loc, scale) draws
  // the eps of gaussian_rsample(loc, 2 log scale). Its backward's grad_scale = sum grad * eps
  // holds no function of the scale, so it is exact at scale = 0.
  m.def(
      "normal_rsample(Tensor loc, Tensor scale, SymInt? num_samples=None, *, "
      "Generator? generator=None) -> (Tensor, Tensor)",
      {at::Tag::nondeterministic_seeded});
  m.def(
      "_normal_rsample_seeded(Tensor loc, Tensor scale, SymInt? num_samples, int seed, "
      "int offset) -> (Tensor, Tensor)");
  m.def(
      "_normal_rsample_replay(Tensor loc, Tensor scale, SymInt? num_samples, Tensor rng_state) "
      "-> (Tensor, Tensor)");
  m.def(
      "_normal_rsample_backward(Tensor grad, Tensor scale, Tensor rng_state, SymInt[] loc_size, "
      "bool has_sample_dim, bool need_grad_loc) -> (Tensor, Tensor)");
}

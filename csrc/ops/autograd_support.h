// Helpers of the C++ autograd kernels (csrc/ops/<family>_autograd.cpp): each kernel runs the
// family's op below the autograd keys and attaches a graph node (ops/autograd_node.h) whose
// backward calls the family's fused backward op through the dispatcher.
#pragma once

#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/grad_mode.h>
#include <ATen/core/LegacyTypeDispatch.h>
#include <ATen/core/Tensor.h>

#include <optional>
#include <tuple>
#include <utility>

namespace gradext::ops {

// The typed handle of "gradext::<name>" (the overload without a name), looked up once per
// call site by the function-local static that holds it.
template <class Signature>
c10::TypedOperatorHandle<Signature> typed_op(const char* qualname) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(qualname, "").typed<Signature>();
}

// The op called below the autograd keys: how an autograd kernel runs the family's op.
template <class Signature, class... Args>
decltype(auto) call_below_autograd(const c10::TypedOperatorHandle<Signature>& op,
                                   Args&&... args) {
  at::AutoDispatchBelowADInplaceOrView below_autograd;
  return op.call(std::forward<Args>(args)...);
}

// Whether a call has a gradient to track: grad mode on and some input requiring grad. Where it
// has none, an autograd kernel calls the op below autograd and builds no node.
template <class... Tensors>
bool tracks_grad(const Tensors&... inputs) {
  return at::GradMode::is_enabled() && (inputs.requires_grad() || ...);
}

// The tensor in `dtype`, without a dispatcher call where it already is (Tensor::to dispatches
// even when it has nothing to do). Also used by the ops' host code (csrc/ops/gaussian.cpp).
inline at::Tensor as_dtype(const at::Tensor& t, at::ScalarType dtype) {
  return t.scalar_type() == dtype ? t : t.to(dtype);
}

// Where a backward formula calls an op: with grad mode off (a plain backward, no create_graph)
// there is no graph to record, so the call skips the op's autograd kernel, which for the fused
// backward ops is torch.library's Python one (their derivatives, for double backward, are in
// gradext/<family>.py) and would cost a Python round trip per call for nothing.
class BelowAutogradUnlessRecording {
 public:
  BelowAutogradUnlessRecording() {
    if (!at::GradMode::is_enabled()) guard_.emplace();
  }

 private:
  std::optional<at::AutoDispatchBelowADInplaceOrView> guard_;
};

}  // namespace gradext::ops

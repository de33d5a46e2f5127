// The autograd graph node of gradext's C++ autograd kernels (csrc/ops/<family>_autograd.cpp),
// written as torch's own operators write theirs (torch/csrc/autograd/generated/Functions.h): a
// torch::autograd::Node subclass holding its saved tensors as SavedVariables and its sizes and
// flags as members, attached to the outputs with collect_next_edges / set_history.
//
// Why not torch::autograd::Function: its generic machinery (an AutogradContext whose non-tensor
// state is a string-keyed map of IValues, the output wrapping for views, dirty and
// non-differentiable tensors, the materialization of undefined gradients) costs about 1.5
// microseconds per forward and 2 per backward over a plain node: measured on one thread on an
// Intel Xeon (AVX-512), torch 2.14, with a two-input op of four elements. A VAE's [128, 20]
// latent spends about 35 microseconds in gradext's Gaussian forward+backward, so that is a tenth
// of it.
//
// What a node does not get for free, and the kernels do themselves: refuse forward-mode AD
// (check_no_forward_grad below; a node would drop the tangent silently), save their own outputs
// with is_output = true after set_history (no reference cycle; unpack them with getptr()), and
// take undefined incoming gradients as zero. torch.func is served by the Python twins of the
// formulas (gradext/_custom_op.py), not by the nodes.
//
// The node type changed between torch versions: shared_ptr-owned in torch/csrc/autograd/
// function.h up to torch 2.11 (deleted through deleteNode, which unrolls long chains), and
// intrusive_ptr-owned in torch/csrc/autograd/node.h since. Both are supported; the header that
// exists says which.
#pragma once

#if __has_include(<torch/csrc/autograd/node.h>)
#include <torch/csrc/autograd/node.h>
#define GRADEXT_INTRUSIVE_AUTOGRAD_NODES 1
#else
#include <torch/csrc/autograd/function.h>
#define GRADEXT_INTRUSIVE_AUTOGRAD_NODES 0
#endif
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/csrc/autograd/saved_variable.h>

#include <memory>

namespace gradext::ops {

#if GRADEXT_INTRUSIVE_AUTOGRAD_NODES
template <class T>
using NodePtr = c10::intrusive_ptr<T>;

template <class T>
NodePtr<T> make_node() {
  return c10::make_intrusive<T>();
}
#else
template <class T>
using NodePtr = std::shared_ptr<T>;

template <class T>
NodePtr<T> make_node() {
  return std::shared_ptr<T>(new T(), &torch::autograd::deleteNode);
}
#endif

// A new node whose next edges are `inputs`: its outputs, in order, are their gradients.
template <class T, class... Tensors>
NodePtr<T> make_node_for(const Tensors&... inputs) {
  NodePtr<T> node = make_node<T>();
  node->set_next_edges(torch::autograd::collect_next_edges(inputs...));
  return node;
}

// Forward-mode AD is refused on every path with the message of gradext/_validation.py's
// check_no_forward_ad (the Python entries ask first; this is for callers of the dispatcher op).
template <class... Tensors>
void check_no_forward_grad(const char* op, const Tensors&... inputs) {
  TORCH_CHECK_NOT_IMPLEMENTED(
      !(torch::autograd::isFwGradDefined(inputs) || ...), op,
      ": forward-mode AD (forward_ad dual tensors, torch.func.jvp, jacfwd, hessian) is not "
      "supported. Use reverse mode: backward(), torch.autograd.grad, torch.func.grad, vjp or "
      "jacrev (second derivatives: jacrev(jacrev(f)) or create_graph=True).");
}

}  // namespace gradext::ops

// The gradext operator namespace. Each op adds its schemas with TORCH_LIBRARY_FRAGMENT beside
// its host code (csrc/ops/<op>.cpp) and its kernels with TORCH_LIBRARY_IMPL per dispatch key.
#include <torch/library.h>

TORCH_LIBRARY(gradext, m) {
  // Fake (meta) kernels and autograd formulas are registered from Python, in this module.
  m.set_python_module("gradext._ops");
}

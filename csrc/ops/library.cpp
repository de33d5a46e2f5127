// The gradext operator namespace. Each op family adds its schemas with TORCH_LIBRARY_FRAGMENT
// beside its host code (csrc/ops/<family>.cpp), names the Python module that holds their fake
// kernels and autograd (gradext/<family>.py) with set_python_module, and adds its kernels with
// TORCH_LIBRARY_IMPL per dispatch key (csrc/ops/cpu/<family>_kernel.cpp,
// csrc/ops/cuda/<family>_kernel.cu).
#include <torch/library.h>

TORCH_LIBRARY(gradext, m) {}

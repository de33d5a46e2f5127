// The gradext._C extension module. The op library (csrc/ops: schemas, CPU and CUDA kernels)
// registers itself with the dispatcher when this library loads; the Python module only exposes
// build facts and test hooks.
#include <Python.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>

#include "ops/cpu/cpu_isa.h"

PYBIND11_MODULE(_C, m) {
  m.doc() = "gradext kernels; the ops themselves are torch.ops.gradext.*";
  m.def(
      "built_with_cuda",
      [] {
#if defined(GRADEXT_WITH_CUDA)
        return true;
#else
        return false;
#endif
      },
      "Whether the CUDA kernels were compiled into this build.");
  m.def(
      "cpu_isa", [] { return gradext::cpu::isa_name(gradext::cpu::active_isa()); },
      "The CPU kernel variant in use: 'default', 'avx2' or 'avx512'.");
  m.def(
      "set_cpu_isa", [](const std::string& name) { gradext::cpu::set_isa(name); },
      "Force a CPU kernel variant ('auto' restores the best one). For tests and benchmarks.");
  m.def(
      "built_cpu_isas", [] { return gradext::cpu::built_isa_names(); },
      "The CPU kernel variants compiled into this build (GRADEXT_CPU_VARIANTS), lowest first.");
}

#include "ops/cpu/cpu_isa.h"

#include <c10/util/Exception.h>

#include <atomic>
#include <cstdlib>

namespace gradext::cpu {
namespace {

bool cpu_supports(Isa isa) {
#if defined(__x86_64__) && defined(__GNUC__)
  switch (isa) {
    case Isa::kDefault:
      return true;
    case Isa::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Isa::kAvx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw");
  }
  return false;
#else
  return isa == Isa::kDefault;
#endif
}

Isa best_supported() {
  if (cpu_supports(Isa::kAvx512)) return Isa::kAvx512;
  if (cpu_supports(Isa::kAvx2)) return Isa::kAvx2;
  return Isa::kDefault;
}

Isa parse(const std::string& name) {
  if (name == "default") return Isa::kDefault;
  if (name == "avx2") return Isa::kAvx2;
  if (name == "avx512") return Isa::kAvx512;
  TORCH_CHECK_VALUE(false, "unknown CPU ISA '", name,
                    "'; expected one of: auto, default, avx2, avx512");
}

Isa resolve(const std::string& name) {
  if (name.empty() || name == "auto") return best_supported();
  const Isa isa = parse(name);
  TORCH_CHECK_VALUE(cpu_supports(isa), "this CPU does not support the '", name,
                    "' kernels");
  return isa;
}

std::atomic<int>& chosen() {
  static std::atomic<int> isa{[] {
    const char* env = std::getenv("GRADEXT_CPU_ISA");
    return static_cast<int>(resolve(env ? env : ""));
  }()};
  return isa;
}

}  // namespace

Isa active_isa() { return static_cast<Isa>(chosen().load(std::memory_order_relaxed)); }

void set_isa(const std::string& name) { chosen().store(static_cast<int>(resolve(name))); }

std::string isa_name(Isa isa) {
  switch (isa) {
    case Isa::kDefault:
      return "default";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512:
      return "avx512";
  }
  return "unknown";
}

}  // namespace gradext::cpu

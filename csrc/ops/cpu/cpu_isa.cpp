#include "ops/cpu/cpu_isa.h"

#include <c10/util/Exception.h>

#include <atomic>
#include <cstdlib>

namespace gradext::cpu {
namespace {

constexpr Isa kAllIsas[] = {Isa::kDefault, Isa::kAvx2, Isa::kAvx512};

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

bool usable(Isa isa) { return isa_built(isa) && cpu_supports(isa); }

std::string built_list() {
  std::string names;
  for (const std::string& name : built_isa_names()) names += (names.empty() ? "" : ", ") + name;
  return names;
}

Isa best_usable() {
  if (usable(Isa::kAvx512)) return Isa::kAvx512;
  if (usable(Isa::kAvx2)) return Isa::kAvx2;
  // A build for one machine's CPU (GRADEXT_CPU_VARIANTS=native) moved to an older one.
  TORCH_CHECK(usable(Isa::kDefault), "gradext was built with the ", built_list(),
              " CPU kernels only, which this CPU does not run; rebuild it here or with "
              "GRADEXT_CPU_VARIANTS=all");
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
  if (name.empty() || name == "auto") return best_usable();
  const Isa isa = parse(name);
  TORCH_CHECK_VALUE(cpu_supports(isa), "this CPU does not support the '", name,
                    "' kernels");
  TORCH_CHECK_VALUE(isa_built(isa), "this build of gradext has no '", name,
                    "' CPU kernels (built: ", built_list(),
                    "); GRADEXT_CPU_VARIANTS=all builds every variant");
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

bool isa_built(Isa isa) {
  switch (isa) {
    case Isa::kDefault:
      return GRADEXT_CPU_VARIANT_DEFAULT;
    case Isa::kAvx2:
      return GRADEXT_CPU_X86_VARIANTS && GRADEXT_CPU_VARIANT_AVX2;
    case Isa::kAvx512:
      return GRADEXT_CPU_X86_VARIANTS && GRADEXT_CPU_VARIANT_AVX512;
  }
  return false;
}

std::vector<std::string> built_isa_names() {
  std::vector<std::string> names;
  for (Isa isa : kAllIsas) {
    if (isa_built(isa)) names.push_back(isa_name(isa));
  }
  return names;
}

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

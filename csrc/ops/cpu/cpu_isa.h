// Run-time choice among the CPU kernel variants compiled for several instruction sets
// (never -march=native: the wheel must run on any x86-64).
#pragma once

#include <string>

namespace gradext::cpu {

enum class Isa { kDefault = 0, kAvx2 = 1, kAvx512 = 2 };

// The best variant this CPU supports, or the one forced with set_isa / GRADEXT_CPU_ISA.
Isa active_isa();

// Forces a variant ("default", "avx2", "avx512"); throws if the CPU lacks it. "auto" resets.
void set_isa(const std::string& name);

std::string isa_name(Isa isa);

}  // namespace gradext::cpu

// Run-time choice among the CPU kernel variants compiled for several instruction sets
// (never -march=native: the wheel must run on any x86-64).
#pragma once

#include <string>
#include <vector>

// The variants a build compiles, GRADEXT_CPU_VARIANT_<ISA> = 1 or 0, the same in every
// translation unit (setup.py sets them from GRADEXT_CPU_VARIANTS; all three when unset). A build
// for one machine can leave out what its CPU never runs: each variant is a third of the kernels'
// compile time.
#ifndef GRADEXT_CPU_VARIANT_DEFAULT
#define GRADEXT_CPU_VARIANT_DEFAULT 1
#endif
#ifndef GRADEXT_CPU_VARIANT_AVX2
#define GRADEXT_CPU_VARIANT_AVX2 1
#endif
#ifndef GRADEXT_CPU_VARIANT_AVX512
#define GRADEXT_CPU_VARIANT_AVX512 1
#endif

// The AVX2 and AVX-512 variants need x86-64 and GCC's target pragmas (per_isa.h).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define GRADEXT_CPU_X86_VARIANTS 1
#else
#define GRADEXT_CPU_X86_VARIANTS 0
#endif

// A native build (setup.py's GRADEXT_CPU_VARIANTS=native, GRADEXT_CPU_NATIVE=1) names the one
// variant this CPU runs best, chosen from the CPU's flags without knowing the compiler: where the
// compiler cannot build the AVX variants (clang), it builds the portable one instead. A list
// that asks for AVX variants alone still stops below: that request cannot be met.
#if defined(GRADEXT_CPU_NATIVE) && !GRADEXT_CPU_X86_VARIANTS && !GRADEXT_CPU_VARIANT_DEFAULT
#undef GRADEXT_CPU_VARIANT_DEFAULT
#define GRADEXT_CPU_VARIANT_DEFAULT 1
#endif

#if !GRADEXT_CPU_VARIANT_DEFAULT && \
    !(GRADEXT_CPU_X86_VARIANTS && (GRADEXT_CPU_VARIANT_AVX2 || GRADEXT_CPU_VARIANT_AVX512))
#error "GRADEXT_CPU_VARIANTS leaves out the portable kernels; the AVX ones need GCC on x86-64"
#endif

namespace gradext::cpu {

enum class Isa { kDefault = 0, kAvx2 = 1, kAvx512 = 2 };

// The best variant this build has and this CPU supports, or the one forced with set_isa /
// GRADEXT_CPU_ISA.
Isa active_isa();

// Forces a variant ("default", "avx2", "avx512"); throws if the CPU lacks it or the build left
// it out. "auto" resets.
void set_isa(const std::string& name);

// Whether this build compiled the variant.
bool isa_built(Isa isa);

// The names of the variants this build compiled, lowest first.
std::vector<std::string> built_isa_names();

std::string isa_name(Isa isa);

}  // namespace gradext::cpu

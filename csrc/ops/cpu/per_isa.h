// Compiles one kernel body once per CPU instruction set, each copy in its own namespace
// (gradext::cpu::isa_default / isa_avx2 / isa_avx512) under `#pragma GCC target`.
//
//   #define GRADEXT_PER_ISA_BODY "ops/cpu/<op>_cpu_impl.h"
//   #include "ops/cpu/per_isa.h"
//
// Include it after every other header: ATen and the standard library must be compiled for the
// default target, so that no AVX code can leak into functions shared with the rest of the
// process. The bodies use only always_inline helpers, which take the enclosing target.
// GRADEXT_CPU_ISA_LEVEL (0 portable, 1 AVX2, 2 AVX-512) tells the bodies which one they are in:
// GCC's target pragma does not define __AVX2__ and friends in C++. A variant the build leaves
// out (GRADEXT_CPU_VARIANT_<ISA>, cpu_isa.h) is not compiled at all.
#if defined(__x86_64__)
#include <immintrin.h>  // declares every ISA's intrinsics; each is usable under its target
#endif

#include "common/philox.h"
#include "common/invalid_inputs.h"
#include "common/random_transforms.h"
#include "common/scalar_math.h"

#include "ops/cpu/cpu_isa.h"

#define GRADEXT_CPU_INLINE GRADEXT_INLINE

#if GRADEXT_CPU_VARIANT_DEFAULT
#define GRADEXT_CPU_ISA_LEVEL 0
namespace gradext::cpu::isa_default {
#include "ops/cpu/philox_lanes.h"
#include "ops/cpu/noise_fill.h"
#include "ops/cpu/row_math.h"
#include GRADEXT_PER_ISA_BODY
}  // namespace gradext::cpu::isa_default
#undef GRADEXT_CPU_ISA_LEVEL
#endif

#if GRADEXT_CPU_X86_VARIANTS && GRADEXT_CPU_VARIANT_AVX2
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define GRADEXT_CPU_ISA_LEVEL 1
namespace gradext::cpu::isa_avx2 {
#include "ops/cpu/philox_lanes.h"
#include "ops/cpu/noise_fill.h"
#include "ops/cpu/row_math.h"
#include GRADEXT_PER_ISA_BODY
}  // namespace gradext::cpu::isa_avx2
#undef GRADEXT_CPU_ISA_LEVEL
#pragma GCC pop_options
#endif

#if GRADEXT_CPU_X86_VARIANTS && GRADEXT_CPU_VARIANT_AVX512
#pragma GCC push_options
#pragma GCC target("avx2,fma,avx512f,avx512dq,avx512vl,avx512bw")
#define GRADEXT_CPU_ISA_LEVEL 2
namespace gradext::cpu::isa_avx512 {
#include "ops/cpu/philox_lanes.h"
#include "ops/cpu/noise_fill.h"
#include "ops/cpu/row_math.h"
#include GRADEXT_PER_ISA_BODY
}  // namespace gradext::cpu::isa_avx512
#undef GRADEXT_CPU_ISA_LEVEL
#pragma GCC pop_options
#endif

// The namespace serving each ISA request. cpu_isa.cpp only ever activates a variant the build
// has; a left-out variant's branch names a built one, so that the selection still compiles.
#if GRADEXT_CPU_VARIANT_DEFAULT
#define GRADEXT_ISA_NS_DEFAULT isa_default
#elif GRADEXT_CPU_VARIANT_AVX2
#define GRADEXT_ISA_NS_DEFAULT isa_avx2
#else
#define GRADEXT_ISA_NS_DEFAULT isa_avx512
#endif
#if GRADEXT_CPU_X86_VARIANTS && GRADEXT_CPU_VARIANT_AVX2
#define GRADEXT_ISA_NS_AVX2 isa_avx2
#else
#define GRADEXT_ISA_NS_AVX2 GRADEXT_ISA_NS_DEFAULT
#endif
#if GRADEXT_CPU_X86_VARIANTS && GRADEXT_CPU_VARIANT_AVX512
#define GRADEXT_ISA_NS_AVX512 isa_avx512
#else
#define GRADEXT_ISA_NS_AVX512 GRADEXT_ISA_NS_AVX2
#endif

// The variant of `fn` (a kernel template instantiated for its template arguments, scalar_t
// first) for an ISA.
#define GRADEXT_SELECT_ISA(isa, fn, ...)                                            \
  ((isa) == ::gradext::cpu::Isa::kAvx512 ? &GRADEXT_ISA_NS_AVX512::fn<__VA_ARGS__> \
   : (isa) == ::gradext::cpu::Isa::kAvx2 ? &GRADEXT_ISA_NS_AVX2::fn<__VA_ARGS__>   \
                                         : &GRADEXT_ISA_NS_DEFAULT::fn<__VA_ARGS__>)

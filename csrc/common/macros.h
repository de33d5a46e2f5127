// Portability macros shared by the host (g++) and device (nvcc) builds of the same math.
#pragma once

#if defined(__CUDACC__) || defined(__HIPCC__)
#define GRADEXT_HOST_DEVICE __host__ __device__
#define GRADEXT_INLINE __host__ __device__ __forceinline__
#else
#define GRADEXT_HOST_DEVICE
// always_inline matters on the CPU: the per-ISA kernels (csrc/ops/cpu) are compiled with
// `#pragma GCC target` and can only vectorize helpers that are inlined into them.
#define GRADEXT_INLINE inline __attribute__((always_inline))
#endif

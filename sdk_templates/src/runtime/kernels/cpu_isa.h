// SPDX-License-Identifier: Apache-2.0
// Which instruction sets the kernels may use: what the CPU reports, capped by EDGEPACK_CPU_ISA.
//
// Every kernel family (float GEMM, int8 GEMM, int8 depthwise, int8 Winograd, quantisation)
// picks its fastest variant once, at first use, from these two functions. The cap lets tests
// check each variant on one machine; it never selects an instruction set the CPU lacks:
//   EDGEPACK_CPU_ISA=generic  the portable C++ loops everywhere
//   EDGEPACK_CPU_ISA=avx2     x86: nothing above AVX2 + FMA
//   EDGEPACK_CPU_ISA=neon     aarch64: the ARMv8.0 kernels, not the dot product (SDOT) ones
#pragma once

namespace edgepack {
namespace kernels {

// True when EDGEPACK_CPU_ISA is set to exactly `name`.
bool cpu_isa_capped_at(const char* name);

// x86 levels, each including the ones below it.
enum class X86Isa {
  kGeneric,     // no vector kernels (or not an x86 CPU)
  kAvx2,        // AVX2 + FMA
  kAvx512,      // AVX-512 F
  kAvx512Vnni,  // AVX-512 F, BW, VL and VNNI (vpdpbusd, vpdpwssd)
};

// The best level this CPU has, capped by EDGEPACK_CPU_ISA; kGeneric on other architectures.
X86Isa x86_isa();

// AVX-512 VBMI (vpermi2b: any byte of a 128-byte table per lane) on top of level kAvx512; false
// when capped below that.
bool x86_has_avx512vbmi();

}  // namespace kernels
}  // namespace edgepack

// Element-wise loops the compiler vectorises by itself (vector_math.cpp, quantize.cpp): with GCC
// on x86-64 Linux also compiled for AVX2 + FMA (x86-64-v3) and AVX-512 (x86-64-v4), picked at
// load time (ifunc), while the library is built for baseline x86-64 (SSE2) so that it runs on
// any host. These clones follow the CPU, not EDGEPACK_CPU_ISA: their results do not depend on
// the vector width. Not with clang: Debian's clang 14 put AVX-512 code into the default version
// (SIGILL on an AVX2-only host). ARM builds use the board's -mcpu (NEON).
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__)
#define EDGEPACK_VECTOR_CLONES \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define EDGEPACK_VECTOR_CLONES
#endif
// For a helper template whose loops must be compiled inside each clone: GCC does not inline a
// large one into a target_clones function by itself, and the copy it calls instead is built for
// the baseline (binary_f32 ran on SSE2 in its AVX2 and AVX-512 clones until 2026-12-01).
#if defined(__GNUC__)
#define EDGEPACK_INLINE_INTO_CLONES __attribute__((always_inline)) inline
#else
#define EDGEPACK_INLINE_INTO_CLONES inline
#endif

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

}  // namespace kernels
}  // namespace edgepack

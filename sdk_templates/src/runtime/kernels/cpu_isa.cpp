// SPDX-License-Identifier: Apache-2.0
#include "runtime/kernels/cpu_isa.h"

#include <cstdlib>
#include <cstring>

namespace edgepack {
namespace kernels {

bool cpu_isa_capped_at(const char* name) {
  const char* cap = std::getenv("EDGEPACK_CPU_ISA");
  return cap != nullptr && std::strcmp(cap, name) == 0;
}

X86Isa x86_isa() {
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
  if (cpu_isa_capped_at("generic")) return X86Isa::kGeneric;
  __builtin_cpu_init();
  if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) return X86Isa::kGeneric;
  if (cpu_isa_capped_at("avx2") || !__builtin_cpu_supports("avx512f")) return X86Isa::kAvx2;
  const bool vnni = __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                    __builtin_cpu_supports("avx512vnni");
  return vnni ? X86Isa::kAvx512Vnni : X86Isa::kAvx512;
#else
  return X86Isa::kGeneric;
#endif
}

bool x86_has_avx512vbmi() {
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
  const X86Isa isa = x86_isa();
  return (isa == X86Isa::kAvx512 || isa == X86Isa::kAvx512Vnni) &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vbmi");
#else
  return false;
#endif
}

}  // namespace kernels
}  // namespace edgepack

// SPDX-License-Identifier: Apache-2.0
#include "runtime/kernels/qdepthwise.h"

#include "runtime/kernels/cpu_isa.h"
#include "runtime/kernels/qdepthwise_impl.h"

namespace edgepack {
namespace kernels {

// Defined in qdepthwise_avx2.cpp (x86 builds only, compiled with -mavx2).
void qdepthwise_plane_avx2(const QDepthwiseParams& p, const uint8_t* in, uint8_t za,
                           const int8_t* w, int32_t bias, QuantMultiplier mult, uint8_t zo,
                           uint8_t* out, void* scratch);
// Defined in qdepthwise_avx512vnni.cpp (x86 builds only, the AVX-512 VNNI flags).
void qdepthwise_plane_avx512vnni(const QDepthwiseParams& p, const uint8_t* in, uint8_t za,
                                 const int8_t* w, int32_t bias, QuantMultiplier mult, uint8_t zo,
                                 uint8_t* out, void* scratch);

namespace {

using PlaneFn = void (*)(const QDepthwiseParams&, const uint8_t*, uint8_t, const int8_t*, int32_t,
                         QuantMultiplier, uint8_t, uint8_t*, void*);

PlaneFn choose() {
#if defined(__x86_64__) || defined(__i386__)
  const X86Isa isa = x86_isa();
  if (isa == X86Isa::kAvx512Vnni) return qdepthwise_plane_avx512vnni;
  if (isa != X86Isa::kGeneric) return qdepthwise_plane_avx2;
#endif
  return qdepthwise_plane_impl;
}

}  // namespace

size_t qdepthwise_scratch_bytes(const QDepthwiseParams& p) {
  return scratch_bytes_impl(p);
}

void qdepthwise_plane(const QDepthwiseParams& p, const uint8_t* in, uint8_t za, const int8_t* w,
                      int32_t bias, QuantMultiplier mult, uint8_t zo, uint8_t* out, void* scratch) {
  static const PlaneFn fn = choose();
  fn(p, in, za, w, bias, mult, zo, out, scratch);
}

}  // namespace kernels
}  // namespace edgepack

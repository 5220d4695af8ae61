// SPDX-License-Identifier: Apache-2.0
// qdepthwise_plane() compiled with the AVX-512 VNNI flags (chosen at run time by qdepthwise.cpp
// when the CPU has avx512f/bw/vl/vnni, as the int8 GEMM's kernel): the AVX2 tap loop with
// vpdpwssd in place of vpmaddwd + vpaddd, the same sums.
#include "runtime/kernels/qdepthwise_impl.h"

namespace edgepack {
namespace kernels {

void qdepthwise_plane_avx512vnni(const QDepthwiseParams& p, const uint8_t* in, uint8_t za,
                                 const int8_t* w, int32_t bias, QuantMultiplier mult, uint8_t zo,
                                 uint8_t* out, void* scratch) {
  qdepthwise_plane_impl(p, in, za, w, bias, mult, zo, out, scratch);
}

}  // namespace kernels
}  // namespace edgepack

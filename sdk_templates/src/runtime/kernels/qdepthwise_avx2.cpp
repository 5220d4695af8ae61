// SPDX-License-Identifier: Apache-2.0
// qdepthwise_plane() compiled with -mavx2 (chosen at run time by qdepthwise.cpp).
#include "runtime/kernels/qdepthwise_impl.h"

namespace edgepack {
namespace kernels {

void qdepthwise_plane_avx2(const QDepthwiseParams& p, const uint8_t* in, uint8_t za,
                           const int8_t* w, int32_t bias, QuantMultiplier mult, uint8_t zo,
                           uint8_t* out, void* scratch) {
  qdepthwise_plane_impl(p, in, za, w, bias, mult, zo, out, scratch);
}

}  // namespace kernels
}  // namespace edgepack

// SPDX-License-Identifier: Apache-2.0
// The Winograd data transforms (winograd_transforms.h) for AVX-512 F: sixteen tiles per vector.
// GCC 12.2's AVX-512 intrinsics start unmasked operations from _mm512_undefined_ps() (`__Y =
// __Y`) and -Wmaybe-uninitialized reports that once inlined (GCC bug 105593, fixed in 12.3).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "winograd_transforms.h"

namespace edgepack {
namespace kernels {

void winograd_input_avx512(int tile, const Winograd3x3::Shape& s, const WinogradImage& img,
                           int64_t t0, int64_t nt, int64_t block, int nr, float* v) {
  if (tile == 4)
    input_transform<F4, W16>(s, img, t0, nt, block, nr, v);
  else
    input_transform<F2, W16>(s, img, t0, nt, block, nr, v);
}

void winograd_output_row_avx512(int tile, const Winograd3x3::Shape& s, int64_t tiles_w,
                                const float* src, int64_t mstride, int64_t t0, int64_t nt,
                                float bias, int clamp, float lo, float hi, float* plane) {
  if (tile == 4)
    output_row<F4, W16>(s, tiles_w, src, mstride, t0, nt, bias, clamp, lo, hi, plane);
  else
    output_row<F2, W16>(s, tiles_w, src, mstride, t0, nt, bias, clamp, lo, hi, plane);
}

}  // namespace kernels
}  // namespace edgepack

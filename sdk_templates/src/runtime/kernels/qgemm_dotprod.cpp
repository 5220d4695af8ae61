// SPDX-License-Identifier: Apache-2.0
// The int8 micro-kernel of qgemm.h with the ARMv8.2 dot product extension (SDOT). Compiled only
// for boards whose board file lists `cpu: features: [dotprod]`, with the flags the packager
// derives for it (EDGEPACK_DOTPROD_FLAGS: the board's -mcpu plus "+dotprod", build/toolchains.py);
// the rest of the SDK keeps the board's own flags, and qgemm.cpp calls this only after
// getauxval(AT_HWCAP) reported HWCAP_ASIMDDP, so the same binary runs on cores without it.
//
// SDOT multiplies signed by signed bytes; the activations are uint8, so qgemm.cpp flips the
// packed panel to int8 (x ^ 0x80 = x - 128) and the epilogue adds 128 * sum_k w back (Kernel::
// x_offset). Full-range weights need no split: s8 x s8 products summed four at a time into int32
// are exact.
//
// Tile: 4 rows x 16 columns = 16 int32x4 accumulators. Per quad one 16-byte load holds the 4 rows'
// 4 weights, four 16-byte panel loads hold 4 columns x 4 k each, and vdotq_laneq_s32 broadcasts
// one row's weights against a panel vector: 16 SDOT per quad.
#if !defined(__ARM_FEATURE_DOTPROD)
#error "qgemm_dotprod.cpp needs the dot product extension (EDGEPACK_DOTPROD_FLAGS)"
#endif
// GCC 12's arm_neon.h defines the dot product intrinsics for "arch=armv8.2-a+dotprod" and
// refuses to inline them into -mcpu=<ARMv8.0 core>+dotprod code (GCC 13 asks for +dotprod
// only). Every core with the extension is ARMv8.2 or later, and only such cores run this file.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC target("arch=armv8.2-a+dotprod")
#endif

#include <arm_neon.h>

#include <cstdint>

#include "runtime/kernels/qgemm.h"

namespace edgepack {
namespace kernels {

void qgemm_tile_dotprod(const int8_t* wb, const uint8_t* panel, int64_t quads, int halves,
                        int32_t* acc) {
  static_assert(kQgemmMr == 4 && kQgemmNr == 16, "the tile below is 4 x 16");
  int32x4_t c[4][4];
  for (int r = 0; r < 4; ++r)
    for (int v = 0; v < 4; ++v) c[r][v] = vdupq_n_s32(0);
  for (int64_t q = 0; q < quads; ++q, panel += 64) {
    int8x16_t x[4];  // the panel's bytes are x - 128 already
    for (int v = 0; v < 4; ++v) x[v] = vreinterpretq_s8_u8(vld1q_u8(panel + 16 * v));
    for (int h = 0; h < halves; ++h, wb += 16) {
      const int8x16_t w = vld1q_s8(wb);  // rows 0..3, 4 bytes each
      for (int v = 0; v < 4; ++v) {
        c[0][v] = vdotq_laneq_s32(c[0][v], x[v], w, 0);
        c[1][v] = vdotq_laneq_s32(c[1][v], x[v], w, 1);
        c[2][v] = vdotq_laneq_s32(c[2][v], x[v], w, 2);
        c[3][v] = vdotq_laneq_s32(c[3][v], x[v], w, 3);
      }
    }
  }
  for (int r = 0; r < 4; ++r)
    for (int v = 0; v < 4; ++v) vst1q_s32(acc + r * kQgemmNr + 4 * v, c[r][v]);
}

}  // namespace kernels
}  // namespace edgepack

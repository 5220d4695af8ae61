// SPDX-License-Identifier: Apache-2.0
// AVX-512: 16 of 32 zmm registers hold the 8 x 32 tile. Compiled with its own -m flags (see
// CMakeLists.txt) and only called after a CPU check.
// GCC 12.2's AVX-512 intrinsics start unmasked operations from _mm512_undefined_epi32() (`__Y =
// __Y`) and -Wmaybe-uninitialized reports that once inlined (GCC bug 105593, fixed in 12.3):
// blend_rows_u8_tmpl's byte widening.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "microkernel.h"

namespace edgepack {
namespace kernels {

namespace {
constexpr int kMR = 8, kNR = 32, kKC = 192, kVB = 64;

// K up to 512 in one block when C is one 32-column panel wide (64 KiB of B; see kc_one_panel).
constexpr MicroKernel kKernel = make_microkernel<kMR, kNR, kKC, kVB>("avx512", 512);
}  // namespace

const MicroKernel* microkernel_avx512() {
  return &kKernel;
}

}  // namespace kernels
}  // namespace edgepack

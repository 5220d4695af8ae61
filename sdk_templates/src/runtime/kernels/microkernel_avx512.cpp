// SPDX-License-Identifier: Apache-2.0
// AVX-512: 16 of 32 zmm registers hold the 8 x 32 tile. Compiled with its own -m flags (see
// CMakeLists.txt) and only called after a CPU check.
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

// SPDX-License-Identifier: Apache-2.0
// AVX2 + FMA: 12 of 16 ymm registers hold the 6 x 16 tile. Compiled with its own -m flags (see
// CMakeLists.txt) and only called after a CPU check.
#include "microkernel.h"

namespace edgepack {
namespace kernels {

namespace {
constexpr int kMR = 6, kNR = 16, kKC = 256, kVB = 32;

// K up to 1024 in one block when C is one 16-column panel wide (64 KiB of B; see kc_one_panel).
constexpr MicroKernel kKernel = make_microkernel<kMR, kNR, kKC, kVB>("avx2", 1024);
}  // namespace

const MicroKernel* microkernel_avx2() {
  return &kKernel;
}

}  // namespace kernels
}  // namespace edgepack

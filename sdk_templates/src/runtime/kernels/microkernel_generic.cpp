// SPDX-License-Identifier: Apache-2.0
// The baseline micro-kernel: NEON on aarch64/armhf (baseline there), SSE2 on x86 hosts whose CPU
// lacks AVX2, plain scalar elsewhere. Tile sizes fit the vector register file of each.
#include "microkernel.h"

namespace edgepack {
namespace kernels {

namespace {
#if defined(__aarch64__)
constexpr int kMR = 8, kNR = 8, kKC = 256, kVB = 16;  // 16 of 32 q registers hold the tile
constexpr const char* kIsa = "neon";
#elif defined(__ARM_NEON)
constexpr int kMR = 4, kNR = 8, kKC = 256, kVB = 16;  // armv7: 8 of 16 q registers
constexpr const char* kIsa = "neon";
#else
constexpr int kMR = 4, kNR = 8, kKC = 256, kVB = 16;
constexpr const char* kIsa = "generic";
#endif

constexpr MicroKernel kKernel = make_microkernel<kMR, kNR, kKC, kVB>(kIsa);
}  // namespace

const MicroKernel* microkernel_generic() {
  return &kKernel;
}

}  // namespace kernels
}  // namespace edgepack

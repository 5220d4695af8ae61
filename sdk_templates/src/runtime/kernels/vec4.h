// SPDX-License-Identifier: Apache-2.0
// Four-float vectors for code built with the baseline flags (no -m options): SSE on x86 hosts,
// NEON on aarch64 and armv7 (explicit vector types, so armv7 gets NEON too: GCC does not
// auto-vectorise float there without -ffast-math). Used by the Winograd transforms
// (kernels/winograd.cpp) and the frame ops (ops/frame_ops.cpp).
//
// In an anonymous namespace on purpose, like microkernel.h's templates: a shared inline
// definition in a file compiled with other -m flags could let the linker pick that copy.
#pragma once

#include <cstdint>
#include <cstring>

namespace edgepack {
namespace {

typedef float V4 __attribute__((vector_size(16), aligned(4), may_alias));
typedef int32_t VI4 __attribute__((vector_size(16)));

inline V4 load4(const float* p) {
  V4 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline void store4(float* p, V4 v) {
  std::memcpy(p, &v, sizeof v);
}

// Lanes I0..I3 of the eight lanes of (a, b).
template <int I0, int I1, int I2, int I3>
inline V4 shuffle(V4 a, V4 b) {
#if defined(__clang__)
  return __builtin_shufflevector(a, b, I0, I1, I2, I3);
#else
  return __builtin_shuffle(a, b, VI4{I0, I1, I2, I3});
#endif
}

// r[0..4) as rows of a 4x4 matrix -> its columns.
inline void transpose4(V4* r) {
  const V4 t0 = shuffle<0, 4, 1, 5>(r[0], r[1]), t1 = shuffle<2, 6, 3, 7>(r[0], r[1]);
  const V4 t2 = shuffle<0, 4, 1, 5>(r[2], r[3]), t3 = shuffle<2, 6, 3, 7>(r[2], r[3]);
  r[0] = shuffle<0, 1, 4, 5>(t0, t2);
  r[1] = shuffle<2, 3, 6, 7>(t0, t2);
  r[2] = shuffle<0, 1, 4, 5>(t1, t3);
  r[3] = shuffle<2, 3, 6, 7>(t1, t3);
}

}  // namespace
}  // namespace edgepack

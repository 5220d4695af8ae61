// SPDX-License-Identifier: Apache-2.0
// The body of qdepthwise_plane() (qdepthwise.h), included by qdepthwise.cpp (baseline ISA) and
// qdepthwise_avx2.cpp (-mavx2), which the compiler vectorises for each.
#pragma once

#include <algorithm>
#include <cstring>

#include "runtime/kernels/qdepthwise.h"

namespace edgepack {
namespace kernels {
// Internal linkage: this body is compiled once per instruction set (qdepthwise.cpp and
// qdepthwise_avx2.cpp), each copy private to its file.
namespace {

inline int64_t padded_h(const QDepthwiseParams& p) {
  return (p.oh - 1) * p.sh + (p.kh - 1) * p.dh + 1;
}
inline int64_t padded_w(const QDepthwiseParams& p) {
  return (p.ow - 1) * p.sw + (p.kw - 1) * p.dw + 1;
}

void qdepthwise_plane_impl(const QDepthwiseParams& p, const uint8_t* in, uint8_t za,
                           const int8_t* w, int32_t bias, QuantMultiplier mult, uint8_t zo,
                           uint8_t* out, void* scratch) {
  const int64_t hp = padded_h(p), wp = padded_w(p);
  auto* plane = static_cast<int16_t*>(scratch);
  auto* plane_acc = reinterpret_cast<int32_t*>(static_cast<uint8_t*>(scratch) +
                                               (static_cast<size_t>(hp * wp) * 2 + 63) / 64 * 64);
  // Columns of the padded row that hold input: [c0, c1).
  const int64_t c0 = std::min(wp, p.pl), c1 = std::max(c0, std::min(wp, p.pl + p.w));
  const auto z = static_cast<int16_t>(za);
  for (int64_t r = 0; r < hp; ++r) {
    int16_t* d = plane + r * wp;
    const int64_t iy = r - p.pt;
    if (iy < 0 || iy >= p.h) {
      std::memset(d, 0, static_cast<size_t>(wp) * sizeof(int16_t));
      continue;
    }
    const uint8_t* s = in + iy * p.w - p.pl;
    for (int64_t c = 0; c < c0; ++c) d[c] = 0;
    for (int64_t c = c0; c < c1; ++c) d[c] = static_cast<int16_t>(s[c] - z);
    for (int64_t c = c1; c < wp; ++c) d[c] = 0;
  }
  for (int64_t oy = 0; oy < p.oh; ++oy) {
    int32_t* acc = plane_acc + oy * p.ow;
    for (int64_t ox = 0; ox < p.ow; ++ox) acc[ox] = bias;
    for (int64_t ky = 0; ky < p.kh; ++ky) {
      const int16_t* row = plane + (oy * p.sh + ky * p.dh) * wp;
      for (int64_t kx = 0; kx < p.kw; ++kx) {
        const int32_t wt = w[ky * p.kw + kx];
        const int16_t* s = row + kx * p.dw;
        if (p.sw == 1) {
          for (int64_t ox = 0; ox < p.ow; ++ox) acc[ox] += wt * s[ox];
        } else if (p.sw == 2) {
          for (int64_t ox = 0; ox < p.ow; ++ox) acc[ox] += wt * s[2 * ox];
        } else {
          for (int64_t ox = 0; ox < p.ow; ++ox) acc[ox] += wt * s[ox * p.sw];
        }
      }
    }
  }
  requantize_row(plane_acc, p.oh * p.ow, 0, mult, zo, out);
}

}  // namespace

}  // namespace kernels
}  // namespace edgepack

// SPDX-License-Identifier: Apache-2.0
// The body of one int8 Winograd task (qwinograd.h): a band of tiles and a range of output-channel
// blocks. Included by qwinograd.cpp (baseline ISA: 16-byte vectors, SSE2 or NEON) and
// qwinograd_avx2.cpp (-mavx2: 32-byte vectors and the vpmaddwd micro-kernel inlined). The
// transforms are written with GCC/Clang vector extensions, so one text serves every ISA.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "runtime/kernels/qgemm.h"
#include "runtime/kernels/qwinograd.h"
#if defined(__AVX2__)
#include <immintrin.h>

#include "runtime/kernels/qrequant_avx2.h"
#endif

namespace edgepack {
namespace kernels {

// One task's operands (all pointers owned by QWinograd3x3 or its scratch).
struct QWinoTask {
  // The int16 image of x - za: [pair][row][parity][half_w][2].
  const int16_t* img;
  int64_t img_rows, half_w;
  int64_t pairs, tiles_w, out_h, out_w;
  int64_t t0, nt;      // tiles of the band
  int64_t vstride;     // int16 values from one pair's row of V to the next
  int64_t b0, b1, mr;  // output-channel blocks [b0, b1) of mr rows
  int64_t out_channels;
  const int16_t* u;  // packed filters: [block][xi][pair][mr][2]
  const int32_t* bias;
  const QuantMultiplier* mult;
  uint8_t zo;
  uint8_t* out;   // the image's output, out_channels x out_h x out_w
  int16_t* v;     // V of the band: [xi][pair][vstride]
  int32_t* mbuf;  // [xi][mr][kQWinoNr] GEMM results of one block and panel
};

// Internal linkage: compiled once per instruction set, each copy private to its file.
namespace {

constexpr int kQWinoXi = 16;

#if defined(__AVX2__)
constexpr int kQWinoVecBytes = 32;
#else
constexpr int kQWinoVecBytes = 16;
#endif
typedef int16_t QWinoV16 __attribute__((vector_size(kQWinoVecBytes), aligned(2), may_alias));
typedef int32_t QWinoV32 __attribute__((vector_size(kQWinoVecBytes), aligned(4), may_alias));
typedef uint32_t QWinoU32 __attribute__((vector_size(kQWinoVecBytes), aligned(4), may_alias));

// V for the band's tiles into t.v (pair p of xi at t.v + (xi * pairs + p) * vstride, tile k of
// the band as 2 int16: the pair's channels). A tile's columns 0..3 are the image row's even and
// odd columns at the tile's index and the next, so a row of tiles is element-wise arithmetic on
// contiguous int16 (both channels of a pair at once), whole vectors only: a row's last vector
// reads up to kQWinoSlack int16 past the row (into the next row, or the image's slack) and writes
// as far past the row's tiles (the next row's tiles overwrite them; vstride has the slack after
// the band). Column j of d B is computed for the four rows at a time (the rows of B^T d B are
// then four operations), so the vectors stay in registers. Tiles past nt up to the panel's end are
// zeroed (the GEMM reads them).
constexpr int64_t kQWinoLanes = kQWinoVecBytes / 2;  // int16 per vector: 2 per tile

inline void qwino_input_transform(const QWinoTask& t) {
  const int64_t xs = t.pairs * t.vstride;  // from one xi to the next
  for (int64_t tile = t.t0; tile < t.t0 + t.nt;) {
    const int64_t ty = tile / t.tiles_w, tx0 = tile % t.tiles_w;
    const int64_t n2 = 2 * std::min(t.tiles_w - tx0, t.t0 + t.nt - tile);  // int16 values
    for (int64_t p = 0; p < t.pairs; ++p) {
      const int16_t* ev[4];
      const int16_t* od[4];
      for (int r = 0; r < 4; ++r) {
        ev[r] = t.img + ((p * t.img_rows + 2 * ty + r) * 2 + 0) * t.half_w * 2 + 2 * tx0;
        od[r] = t.img + ((p * t.img_rows + 2 * ty + r) * 2 + 1) * t.half_w * 2 + 2 * tx0;
      }
      int16_t* dst = t.v + p * t.vstride + 2 * (tile - t.t0);
      for (int64_t i = 0; i < n2; i += kQWinoLanes) {
        auto ld = [&](const int16_t* q) {
          QWinoV16 x;
          std::memcpy(&x, q + i, sizeof x);
          return x;
        };
        for (int j = 0; j < 4; ++j) {
          QWinoV16 h[4];  // (d B)[r][j]: d0 - d2, d1 + d2, d2 - d1, d1 - d3
          for (int r = 0; r < 4; ++r) {
            if (j == 0) h[r] = ld(ev[r]) - ld(ev[r] + 2);
            if (j == 1) h[r] = ld(od[r]) + ld(ev[r] + 2);
            if (j == 2) h[r] = ld(ev[r] + 2) - ld(od[r]);
            if (j == 3) h[r] = ld(od[r]) - ld(od[r] + 2);
          }
          const QWinoV16 o[4] = {h[0] - h[2], h[1] + h[2], h[2] - h[1], h[1] - h[3]};
          for (int k = 0; k < 4; ++k) std::memcpy(dst + (k * 4 + j) * xs + i, &o[k], sizeof o[k]);
        }
      }
    }
    tile += n2 / 2;
  }
  const int64_t end = (t.nt + kQWinoNr - 1) / kQWinoNr * kQWinoNr;
  if (end > t.nt)
    for (int64_t k = 0; k < kQWinoXi * t.pairs; ++k)
      std::memset(t.v + k * t.vstride + 2 * t.nt, 0,
                  static_cast<size_t>(end - t.nt) * 2 * sizeof(int16_t));
}

// Y = A^T M A of row r of the block's GEMM results (16 tiles), / 4: y[k][tile], k = output row
// * 2 + column of the 2x2 tile. All sums modulo 2^32 (unsigned lanes); the true 4x result fits
// int32 (QWinograd3x3::exact_for), so the value is exact and divisible by 4.
inline void qwino_output_tiles(const int32_t* m, int64_t mr, int32_t y[4][kQWinoNr]) {
  constexpr int kLanes = kQWinoVecBytes / 4;
  for (int g = 0; g < kQWinoNr; g += kLanes) {
    QWinoU32 s[kQWinoXi];
    for (int xi = 0; xi < kQWinoXi; ++xi)
      std::memcpy(&s[xi], m + xi * mr * kQWinoNr + g, sizeof(s[xi]));
    QWinoU32 a0[4], a1[4];  // A^T M
    for (int c = 0; c < 4; ++c) {
      a0[c] = s[c] + s[4 + c] + s[8 + c];
      a1[c] = s[4 + c] - s[8 + c] - s[12 + c];
    }
    const QWinoV32 r[4] = {
        (QWinoV32)(a0[0] + a0[1] + a0[2]) >> 2, (QWinoV32)(a0[1] - a0[2] - a0[3]) >> 2,
        (QWinoV32)(a1[0] + a1[1] + a1[2]) >> 2, (QWinoV32)(a1[1] - a1[2] - a1[3]) >> 2};
    for (int k = 0; k < 4; ++k) std::memcpy(&y[k][g], &r[k], sizeof(r[k]));
  }
}

// q = the requantised bytes of y + bias (requantize_row(), qgemm.h); on AVX2 from registers
// (qrequant_avx2.h, the same bytes) when M < 1.
inline void qwino_requantize(const int32_t y[4][kQWinoNr], int32_t bias, QuantMultiplier m,
                             uint8_t zo, uint8_t q[4][kQWinoNr]) {
#if defined(__AVX2__)
  static_assert(kQWinoNr == 16, "one requant16_avx2 per output position");
  if (m.shift <= 0) {
    const int total = std::min(62, 31 - m.shift);
    for (int k = 0; k < 4; ++k) {
      const __m256i a[2] = {_mm256_load_si256(reinterpret_cast<const __m256i*>(y[k])),
                            _mm256_load_si256(reinterpret_cast<const __m256i*>(y[k] + 8))};
      _mm_store_si128(reinterpret_cast<__m128i*>(q[k]),
                      requant16_avx2(a, bias, int64_t(m.m0), total, zo));
    }
    return;
  }
#endif
  requantize_row(y[0], 4 * kQWinoNr, bias, m, zo, q[0]);
}

// One task: V of the band, then for each block of output channels and each panel of 16 tiles
// the 16 GEMMs (gemm(u, v, pairs, vstride, out): out[r][tile], mr x 16) and the output
// transform, requantised, the valid outputs written.
template <class Gemm>
void qwino_task(const QWinoTask& t, Gemm gemm) {
  qwino_input_transform(t);
  const int64_t mr = t.mr, ow = t.out_w, oh = t.out_h;
  const size_t ublock = static_cast<size_t>(kQWinoXi * t.pairs * mr * 2);
  // Runs of a panel's tiles within one tile row: output bytes [ox, ox + bytes) of rows oy and
  // oy + 1 (rows: 1 at an odd height's last row; bytes: odd at an odd width's last column).
  struct Run {
    int64_t k, oy, ox, bytes;
    int rows;
  };
  Run runs[kQWinoNr];
  for (int64_t pt = 0; pt < t.nt; pt += kQWinoNr) {
    const int64_t n = std::min<int64_t>(kQWinoNr, t.nt - pt);
    int nruns = 0;
    for (int64_t k = 0; k < n;) {
      const int64_t tile = t.t0 + pt + k, ty = tile / t.tiles_w, tx = tile % t.tiles_w;
      const int64_t len = std::min(n - k, t.tiles_w - tx);
      runs[nruns++] = {k, 2 * ty, 2 * tx, std::min(2 * len, ow - 2 * tx), oh - 2 * ty > 1 ? 2 : 1};
      k += len;
    }
    for (int64_t b = t.b0; b < t.b1; ++b) {
      const int16_t* ub = t.u + size_t(b) * ublock;
      const int64_t rows = std::min(mr, t.out_channels - b * mr);
      for (int xi = 0; xi < kQWinoXi; ++xi)
        gemm(ub + size_t(xi) * t.pairs * mr * 2, t.v + xi * t.pairs * t.vstride + 2 * pt, t.pairs,
             t.vstride, t.mbuf + xi * mr * kQWinoNr);
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t j = b * mr + r;
        alignas(64) int32_t y[4][kQWinoNr];
        alignas(64) uint8_t q[4][kQWinoNr];
        alignas(64) uint8_t il[2][2 * kQWinoNr];  // output rows 2 ty, 2 ty + 1 of each tile
        qwino_output_tiles(t.mbuf + r * kQWinoNr, mr, y);
        qwino_requantize(y, t.bias[j], t.mult[j], t.zo, q);
        for (int dy = 0; dy < 2; ++dy)
          for (int k = 0; k < kQWinoNr; ++k) {
            il[dy][2 * k] = q[2 * dy][k];
            il[dy][2 * k + 1] = q[2 * dy + 1][k];
          }
        uint8_t* plane = t.out + j * oh * ow;
        for (int i = 0; i < nruns; ++i) {
          const Run& u = runs[i];
          for (int dy = 0; dy < u.rows; ++dy) {
            uint8_t* o = plane + (u.oy + dy) * ow + u.ox;
            if (u.bytes == 2 * kQWinoNr)
              std::memcpy(o, il[dy], 2 * kQWinoNr);
            else
              std::memcpy(o, il[dy] + 2 * u.k, static_cast<size_t>(u.bytes));
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace kernels
}  // namespace edgepack

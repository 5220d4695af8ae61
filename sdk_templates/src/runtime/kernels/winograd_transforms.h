// SPDX-License-Identifier: Apache-2.0
// The Winograd data transforms of winograd.cpp, written once for any vector width: lanes are
// tiles side by side, in groups of four per 128-bit chunk, so every transpose is the 4x4 one of
// vec4.h run inside each 128-bit chunk (unpcklps / unpckhps / shufps, which work per chunk at
// every width) and a tile's row is one 128-bit load or store.
//   W4   four tiles: V4 (vec4.h), SSE on x86 hosts, NEON on ARM (winograd.cpp)
//   W8   eight tiles, AVX2 + FMA (winograd_avx2.cpp, built with -mavx2 -mfma)
//   W16  sixteen tiles, AVX-512 F (winograd_avx512.cpp)
// winograd.cpp picks the width of the GEMM micro-kernel in use (gemm_shape().isa), so
// EDGEPACK_CPU_ISA caps both.
//
// Everything but the per-ISA entry points lives in an anonymous namespace on purpose (as in
// vec4.h): a shared inline definition in files built with different -m flags could let the
// linker keep the copy with the wider instructions.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "vec4.h"
#include "winograd.h"

#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace edgepack {
namespace kernels {

// The input, zero-padded so that every tile is whole: row i, column j of channel c at
// data[c * plane + i * wp + j] is input (i - pad_top, j - pad_left).
struct WinogradImage {
  const float* data;
  int64_t wp, plane, tiles_w;
};

// Per-ISA entry points (x86 only; tile: 2 or 4). See input_transform / output_row below.
void winograd_input_avx2(int tile, const Winograd3x3::Shape& s, const WinogradImage& img,
                         int64_t t0, int64_t nt, int64_t block, int nr, float* v);
void winograd_output_row_avx2(int tile, const Winograd3x3::Shape& s, int64_t tiles_w,
                              const float* src, int64_t mstride, int64_t t0, int64_t nt, float bias,
                              int clamp, float lo, float hi, float* plane);
void winograd_input_avx512(int tile, const Winograd3x3::Shape& s, const WinogradImage& img,
                           int64_t t0, int64_t nt, int64_t block, int nr, float* v);
void winograd_output_row_avx512(int tile, const Winograd3x3::Shape& s, int64_t tiles_w,
                                const float* src, int64_t mstride, int64_t t0, int64_t nt,
                                float bias, int clamp, float lo, float hi, float* plane);

namespace {

// Floats from one xi's matrix (rows x block) to the next: 64 bytes more than the matrix, so the
// 16 or 36 matrices that the transforms read or write side by side do not all fall into the
// same L1 cache sets (a multiple of 4 KiB apart, they did: 30% slower on 64 channels).
inline int64_t xi_floats(int64_t rows, int64_t block) {
  return rows * block + 16;
}

// F(4, 3) on points 0, +-1, +-2 (the transform of Lavin & Gray, as in ncnn): B^T, G, A^T.
struct F4 {
  static constexpr int m = 4, a = 6;
  template <class V>
  static void in(const V* d, V* o) {  // o = B^T d
    o[0] = 4.0f * d[0] - 5.0f * d[2] + d[4];
    o[1] = -4.0f * (d[1] + d[2]) + d[3] + d[4];
    o[2] = 4.0f * (d[1] - d[2]) - d[3] + d[4];
    o[3] = -2.0f * (d[1] - d[3]) - d[2] + d[4];
    o[4] = 2.0f * (d[1] - d[3]) - d[2] + d[4];
    o[5] = 4.0f * d[1] - 5.0f * d[3] + d[5];
  }
  template <class V>
  static void out(const V* s, V* o) {  // o = A^T s
    const V p = s[1] + s[2], q = s[1] - s[2], r = s[3] + s[4], t = s[3] - s[4];
    o[0] = s[0] + p + r;
    o[1] = q + 2.0f * t;
    o[2] = p + 4.0f * r;
    o[3] = q + 8.0f * t + s[5];
  }
  static constexpr double G[a][3] = {{1.0 / 4, 0, 0},
                                     {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                     {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                     {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                     {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                     {0, 0, 1}};
};

// F(2, 3): additions only in the data transforms.
struct F2 {
  static constexpr int m = 2, a = 4;
  template <class V>
  static void in(const V* d, V* o) {
    o[0] = d[0] - d[2];
    o[1] = d[1] + d[2];
    o[2] = d[2] - d[1];
    o[3] = d[1] - d[3];
  }
  template <class V>
  static void out(const V* s, V* o) {
    o[0] = s[0] + s[1] + s[2];
    o[1] = s[1] - s[2] - s[3];
  }
  static constexpr double G[a][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
};

// A width: V (L floats), load(p): chunk h (floats h*4 .. h*4+3) from p[h]; store(p, v): the
// reverse; load_all / store_all: L consecutive floats; transpose4: vec4.h's per 128-bit chunk.
struct W4 {
  using V = V4;
  static constexpr int L = 4;
  static V load(const float* const* p) { return load4(p[0]); }
  static void store(float* const* p, V v) { store4(p[0], v); }
  static V load_all(const float* p) { return load4(p); }
  static void store_all(float* p, V v) { store4(p, v); }
  static void transpose(V* r) { transpose4(r); }
};

#if defined(__AVX2__)
struct W8 {
  typedef float V __attribute__((vector_size(32), may_alias));
  static constexpr int L = 8;
  static V load(const float* const* p) {
    return (V)_mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(p[0])), _mm_loadu_ps(p[1]),
                                   1);
  }
  static void store(float* const* p, V v) {
    _mm_storeu_ps(p[0], _mm256_castps256_ps128((__m256)v));
    _mm_storeu_ps(p[1], _mm256_extractf128_ps((__m256)v, 1));
  }
  static V load_all(const float* p) { return (V)_mm256_loadu_ps(p); }
  static void store_all(float* p, V v) { _mm256_storeu_ps(p, (__m256)v); }
  static void transpose(V* r) {
    const __m256 t0 = _mm256_unpacklo_ps((__m256)r[0], (__m256)r[1]);
    const __m256 t1 = _mm256_unpackhi_ps((__m256)r[0], (__m256)r[1]);
    const __m256 t2 = _mm256_unpacklo_ps((__m256)r[2], (__m256)r[3]);
    const __m256 t3 = _mm256_unpackhi_ps((__m256)r[2], (__m256)r[3]);
    r[0] = (V)_mm256_shuffle_ps(t0, t2, 0x44);
    r[1] = (V)_mm256_shuffle_ps(t0, t2, 0xEE);
    r[2] = (V)_mm256_shuffle_ps(t1, t3, 0x44);
    r[3] = (V)_mm256_shuffle_ps(t1, t3, 0xEE);
  }
};
#endif

#if defined(__AVX512F__)
struct W16 {
  typedef float V __attribute__((vector_size(64), may_alias));
  static constexpr int L = 16;
  static V load(const float* const* p) {
    __m512 v = _mm512_castps128_ps512(_mm_loadu_ps(p[0]));
    v = _mm512_insertf32x4(v, _mm_loadu_ps(p[1]), 1);
    v = _mm512_insertf32x4(v, _mm_loadu_ps(p[2]), 2);
    return (V)_mm512_insertf32x4(v, _mm_loadu_ps(p[3]), 3);
  }
  static void store(float* const* p, V v) {
    _mm_storeu_ps(p[0], _mm512_castps512_ps128((__m512)v));
    _mm_storeu_ps(p[1], _mm512_extractf32x4_ps((__m512)v, 1));
    _mm_storeu_ps(p[2], _mm512_extractf32x4_ps((__m512)v, 2));
    _mm_storeu_ps(p[3], _mm512_extractf32x4_ps((__m512)v, 3));
  }
  static V load_all(const float* p) { return (V)_mm512_loadu_ps(p); }
  static void store_all(float* p, V v) { _mm512_storeu_ps(p, (__m512)v); }
  static void transpose(V* r) {
    const __m512 t0 = _mm512_unpacklo_ps((__m512)r[0], (__m512)r[1]);
    const __m512 t1 = _mm512_unpackhi_ps((__m512)r[0], (__m512)r[1]);
    const __m512 t2 = _mm512_unpacklo_ps((__m512)r[2], (__m512)r[3]);
    const __m512 t3 = _mm512_unpackhi_ps((__m512)r[2], (__m512)r[3]);
    r[0] = (V)_mm512_shuffle_ps(t0, t2, 0x44);
    r[1] = (V)_mm512_shuffle_ps(t0, t2, 0xEE);
    r[2] = (V)_mm512_shuffle_ps(t1, t3, 0x44);
    r[3] = (V)_mm512_shuffle_ps(t1, t3, 0xEE);
  }
};
#endif

// V_xi for tiles [t0, t0 + nt) of the image, all input channels, in the packed-B layout of gemm.h:
// xi's matrix (in x block) at v + xi * xi_floats(in, block), tile t (block-local) in panel t / nr,
// column t % nr (nr a multiple of W::L). Reads the zero-padded image, where every tile is whole
// and each tile row has 8 readable floats, so a tile's row is two 128-bit loads and the lanes
// become the columns of the tiles by 4x4 transposes. Lanes past nt repeat the last tile (their
// columns are dropped).
template <class F, class W>
void input_transform(const Winograd3x3::Shape& s, const WinogradImage& img, int64_t t0, int64_t nt,
                     int64_t block, int nr, float* v) {
  using V = typename W::V;
  constexpr int a = F::a, m = F::m, L = W::L, H = L / 4;
  const int64_t cin = s.in_channels, xi_stride = xi_floats(cin, block);
  for (int64_t g = 0; g < nt; g += L) {
    const float* base[L];  // lane k = 4 h + l: chunk h of the vectors of group l
    for (int k = 0; k < L; ++k) {
      const int64_t t = t0 + std::min<int64_t>(g + k, nt - 1);
      base[k] = img.data + (t / img.tiles_w) * m * img.wp + (t % img.tiles_w) * m;
    }
    float* dst = v + (g / nr) * cin * nr + g % nr;
    for (int64_t ic = 0; ic < cin; ++ic, dst += nr) {
      const int64_t at = ic * img.plane;
      // d[r][c]: row r, column c of the L tiles (lanes).
      V d[a][8];
      for (int r = 0; r < a; ++r) {
        V lo[4], hi[4];
        for (int l = 0; l < 4; ++l) {
          const float* row[H];
          for (int h = 0; h < H; ++h) row[h] = base[4 * h + l] + at + r * img.wp;
          lo[l] = W::load(row);
          if (a > 4) {
            for (int h = 0; h < H; ++h) row[h] += 4;
            hi[l] = W::load(row);
          }
        }
        W::transpose(lo);
        for (int c = 0; c < 4; ++c) d[r][c] = lo[c];
        if (a > 4) {
          W::transpose(hi);
          for (int c = 4; c < a; ++c) d[r][c] = hi[c - 4];
        }
      }
      // Columns first: tmp[i][c] = (B^T d)[i][c]; then rows: V[i][j] = (tmp B)[i][j].
      V tmp[a][a];
      for (int c = 0; c < a; ++c) {
        V col[a], o[a];
        for (int r = 0; r < a; ++r) col[r] = d[r][c];
        F::in(col, o);
        for (int i = 0; i < a; ++i) tmp[i][c] = o[i];
      }
      for (int i = 0; i < a; ++i) {
        V o[a];
        F::in(tmp[i], o);
        for (int j = 0; j < a; ++j) W::store_all(dst + (i * a + j) * xi_stride, o[j]);
      }
    }
  }
}

// Y = A^T M A + bias for one output channel and tiles [t0, t0 + nt): M_xi at src + xi * mstride
// (block-local tile t at column t, readable up to the next multiple of W::L). Clamps to [lo, hi]
// when clamp is set and writes the tiles' valid outputs into the channel's plane (out_h x out_w).
template <class F, class W>
void output_row(const Winograd3x3::Shape& s, int64_t tiles_w, const float* src, int64_t mstride,
                int64_t t0, int64_t nt, float bias_value, int clamp, float lo_value, float hi_value,
                float* plane) {
  using V = typename W::V;
  constexpr int a = F::a, m = F::m, L = W::L, H = L / 4;
  const int64_t OH = s.out_h, OW = s.out_w;
  const V lo = V{} + lo_value, hi = V{} + hi_value, bias = V{} + bias_value;
  // Tile t0 + g at tile row tr, column tc (stepped, not divided: 2 L divisions per group cost
  // as much as the transform).
  int64_t tr = t0 / tiles_w, tc = t0 % tiles_w;
  for (int64_t g = 0; g < nt; g += L) {
    int64_t oh0[L], ow0[L];  // the group's tiles' first output row and column
    for (int k = 0; k < L; ++k) {
      oh0[k] = tr * m;
      ow0[k] = tc * m;
      if (++tc == tiles_w) {
        tc = 0;
        ++tr;
      }
    }
    V tmp[m][a];
    for (int c = 0; c < a; ++c) {
      V col[a], o[m];
      for (int i = 0; i < a; ++i) col[i] = W::load_all(src + (i * a + c) * mstride + g);
      F::out(col, o);
      for (int i = 0; i < m; ++i) tmp[i][c] = o[i];
    }
    V y[m][m];  // y[i][j]: output row i, column j of the L tiles (lanes)
    for (int i = 0; i < m; ++i) {
      F::out(tmp[i], y[i]);
      for (int j = 0; j < m; ++j) {
        V val = y[i][j] + bias;
        if (clamp) {
          val = val < lo ? lo : val;
          val = val > hi ? hi : val;
        }
        y[i][j] = val;
      }
    }
    // L whole 4x4 tiles: transposed back (per 128-bit chunk), each output row of a tile is one
    // 128-bit store.
    bool whole = m == 4 && g + L <= nt;
    int64_t at[L];
    for (int k = 0; k < L && whole; ++k) {
      whole = oh0[k] + m <= OH && ow0[k] + m <= OW;
      at[k] = oh0[k] * OW + ow0[k];
    }
    if (whole) {
      for (int i = 0; i < m; ++i) {
        W::transpose(y[i]);
        for (int l = 0; l < 4; ++l) {
          float* p[H];
          for (int h = 0; h < H; ++h) p[h] = plane + at[4 * h + l] + i * OW;
          W::store(p, y[i][l]);
        }
      }
      continue;
    }
    for (int k = 0; k < L && g + k < nt; ++k) {
      const int64_t hn = std::min<int64_t>(m, OH - oh0[k]), wn = std::min<int64_t>(m, OW - ow0[k]);
      for (int64_t i = 0; i < hn; ++i) {
        float* row = plane + (oh0[k] + i) * OW + ow0[k];
        for (int64_t j = 0; j < wn; ++j) row[j] = y[i][j][k];
      }
    }
  }
}

}  // namespace
}  // namespace kernels
}  // namespace edgepack

// SPDX-License-Identifier: Apache-2.0
// The body of qdepthwise_plane() (qdepthwise.h), included by qdepthwise.cpp (baseline ISA),
// qdepthwise_avx2.cpp (-mavx2, which adds the intrinsic tap loop below) and
// qdepthwise_avx512vnni.cpp (the same loop with vpdpwssd: multiply, pair and accumulate in one).
//
// Layout: each padded input row is split into `sw` phases (column c goes to phase c % sw at
// c / sw), so for every stride the taps of consecutive outputs are consecutive int16 values:
// tap (ky, kx) of output (oy, ox) is row oy * sh + ky * dh, phase (kx * dw) % sw, offset
// ox + (kx * dw) / sw. Each phase has kSlack spare zeros, so 16-wide loads past the row's end
// stay in the buffer (their sums are dropped).
#pragma once

#include <algorithm>
#include <cstring>

#include "runtime/kernels/qdepthwise.h"
#if defined(__AVX2__)
#include <immintrin.h>

#include "runtime/kernels/qrequant_avx2.h"
#endif

namespace edgepack {
namespace kernels {
// Internal linkage: this body is compiled once per instruction set, each copy private to its
// file.
namespace {

constexpr int64_t kSlack = 16;
constexpr int64_t kMaxTaps = kQDepthwiseMaxTaps;

struct Layout {
  int64_t hp, wp;  // padded plane rows and columns the taps read
  int64_t wq;      // int16 values per phase (with slack)
  int64_t owp;     // accumulator row pitch (ow rounded up to 16)
};

inline Layout layout(const QDepthwiseParams& p) {
  Layout l;
  l.hp = (p.out_h - 1) * p.stride_h + (p.kernel_h - 1) * p.dilation_h + 1;
  l.wp = (p.out_w - 1) * p.stride_w + (p.kernel_w - 1) * p.dilation_w + 1;
  l.wq = (l.wp + p.stride_w - 1) / p.stride_w + kSlack;
  l.owp = (p.out_w + 15) / 16 * 16;
  return l;
}

inline size_t plane_bytes(const Layout& l, const QDepthwiseParams& p) {
  return (static_cast<size_t>(l.hp * p.stride_w * l.wq) * sizeof(int16_t) + 63) / 64 * 64;
}

// The uint8 layout of the AVX-512 VNNI path (qdepthwise_avx512vnni.cpp): the padded plane
// (padding = za) split into stride_h planes by row (padded row r is row r / stride_h of plane
// r % stride_h), every row `pitch` bytes, a multiple of stride_w. Output (oy, ox) is then flat
// output j = oy * pitch / stride_w + ox, and its tap (ky, kx) is byte stride_w * j + kx * dw of
// row (ky * dh) / stride_h of plane (ky * dh) % stride_h: one constant offset per tap over the
// whole plane, so vectors run across row ends (the outputs past out_w are dropped).
struct QuadLayout {
  int64_t hp;     // padded rows the taps read
  int64_t pitch;  // bytes per padded row
  int64_t rows;   // rows per plane
};

constexpr int64_t kQuadSlack = 256;  // bytes past the last plane that the vectors may touch

// a / d for a >= 0, d >= 1, without a 64-bit division for strides 1 and 2 (called per plane: a
// few divisions cost as much as a 7x7 plane's taps).
inline int64_t div_stride(int64_t a, int64_t d) {
  return d == 1 ? a : (d == 2 ? a >> 1 : a / d);
}

inline QuadLayout quad_layout(const QDepthwiseParams& p) {
  QuadLayout l;
  l.hp = (p.out_h - 1) * p.stride_h + (p.kernel_h - 1) * p.dilation_h + 1;
  const int64_t wp = (p.out_w - 1) * p.stride_w + (p.kernel_w - 1) * p.dilation_w + 1;
  l.pitch = div_stride(wp + p.stride_w - 1, p.stride_w) * p.stride_w;
  l.rows = div_stride(l.hp + p.stride_h - 1, p.stride_h);
  return l;
}

inline size_t scratch_bytes_impl(const QDepthwiseParams& p) {
  const Layout l = layout(p);
  // plane, int32 sums, requantised bytes, one int16 row (strided convolutions)
  const size_t planar = plane_bytes(l, p) +
                        static_cast<size_t>(p.out_h * l.owp) * (sizeof(int32_t) + 1) +
                        static_cast<size_t>(l.wp) * sizeof(int16_t) + 2;
  const QuadLayout q = quad_layout(p);
  const auto quad = static_cast<size_t>(p.stride_h * q.rows * q.pitch + kQuadSlack);
  return std::max(planar, quad);
}

// acc[ox] = bias + sum_t w[t] * src[t][ox] for ox < n (n rounded up to 16 on AVX2: the
// accumulator row and the sources have room).
#if defined(__AVX2__)
// acc + the pairwise products of x and w (int16 pairs into int32 lanes).
inline __m256i dot_pairs(__m256i acc, __m256i x, __m256i w) {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
  return _mm256_dpwssd_epi32(acc, x, w);
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(x, w));
#endif
}

// The taps as int16 pairs (w[t], w[t + 1]) for vpmaddwd; an odd last tap pairs with 0.
inline void tap_pairs(const int8_t* w, int ntaps, int32_t* pairs) {
  for (int t = 0; t < ntaps; t += 2) {
    const int32_t w1 = t + 1 < ntaps ? w[t + 1] : 0;
    pairs[t / 2] =
        int32_t(uint16_t(int16_t(w[t]))) | int32_t(uint32_t(uint16_t(int16_t(w1))) << 16);
  }
}

// Sums of outputs ox .. ox + 15 in order: v[0] columns 0-7, v[1] columns 8-15.
inline void taps16(const int16_t* const* src, const int32_t* pairs, int ntaps, int32_t bias,
                   int64_t ox, __m256i v[2]) {
  __m256i lo = _mm256_set1_epi32(bias), hi = lo;
  for (int t = 0; t < ntaps; t += 2) {
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src[t] + ox));
    const __m256i b =
        t + 1 < ntaps ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src[t + 1] + ox)) : a;
    const __m256i wv = _mm256_set1_epi32(pairs[t / 2]);
    // (a[x], b[x]) pairs: columns 0-3 and 8-11 in lo, 4-7 and 12-15 in hi.
    lo = dot_pairs(lo, _mm256_unpacklo_epi16(a, b), wv);
    hi = dot_pairs(hi, _mm256_unpackhi_epi16(a, b), wv);
  }
  v[0] = _mm256_permute2x128_si256(lo, hi, 0x20);
  v[1] = _mm256_permute2x128_si256(lo, hi, 0x31);
}

// taps16 for a kernel of NT taps known at compile time (3x3: 9), the tap pairs broadcast once
// per plane (wv) and the loop unrolled: MobileNetV2's 3x3 depthwise planes ~1.5x faster.
template <int NT>
inline void taps16_fixed(const int16_t* const* src, const __m256i* wv, __m256i bias, int64_t ox,
                         __m256i v[2]) {
  __m256i lo = bias, hi = bias;
  for (int t = 0; t < NT; t += 2) {
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src[t] + ox));
    const __m256i b = t + 1 < NT
                          ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src[t + 1] + ox))
                          : _mm256_setzero_si256();
    lo = dot_pairs(lo, _mm256_unpacklo_epi16(a, b), wv[t / 2]);
    hi = dot_pairs(hi, _mm256_unpackhi_epi16(a, b), wv[t / 2]);
  }
  v[0] = _mm256_permute2x128_si256(lo, hi, 0x20);
  v[1] = _mm256_permute2x128_si256(lo, hi, 0x31);
}

// All output rows of a plane of an NT-tap kernel, requantised from the registers (M < 1).
template <int NT>
void rows_requant_fixed(const int16_t* plane, int64_t row_pitch, const int64_t* tap_at,
                        const int8_t* w, int32_t bias, int64_t out_h, int64_t n, int64_t m0,
                        int total, int32_t zo, uint8_t* out) {
  int32_t pairs[NT / 2 + 1];
  tap_pairs(w, NT, pairs);
  __m256i wv[NT / 2 + 1];
  for (int t = 0; t < NT; t += 2) wv[t / 2] = _mm256_set1_epi32(pairs[t / 2]);
  const __m256i vbias = _mm256_set1_epi32(bias);
  const int16_t* src[NT];
  for (int64_t oy = 0; oy < out_h; ++oy, out += n) {
    const int64_t room = (out_h - oy) * n;  // output bytes from this row's start
    const int16_t* row = plane + oy * row_pitch;
    for (int t = 0; t < NT; ++t) src[t] = row + tap_at[t];
    int64_t ox = 0;
    for (; ox + 16 <= n; ox += 16) {
      __m256i v[2];
      taps16_fixed<NT>(src, wv, vbias, ox, v);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + ox), requant16_avx2(v, 0, m0, total, zo));
    }
    if (ox < n) {
      __m256i v[2];
      taps16_fixed<NT>(src, wv, vbias, ox, v);
      const __m128i bytes = requant16_avx2(v, 0, m0, total, zo);
      if (ox + 16 <= room) {  // past the row: bytes of the rows below, written after this one
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + ox), bytes);
      } else {
        alignas(16) uint8_t tail[16];
        _mm_store_si128(reinterpret_cast<__m128i*>(tail), bytes);
        std::memcpy(out + ox, tail, static_cast<size_t>(n - ox));
      }
    }
  }
}

// d[i] = s[2 * i] and d[wq + i] = s[2 * i + 1] for i < n (the two phases of a stride-2 row).
inline void split_phases2(const int16_t* s, int64_t n, int64_t wq, int16_t* d) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 2 * i));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 2 * i + 8));
    const __m128i even = _mm_packs_epi32(_mm_srai_epi32(_mm_slli_epi32(a, 16), 16),
                                         _mm_srai_epi32(_mm_slli_epi32(b, 16), 16));
    const __m128i odd = _mm_packs_epi32(_mm_srai_epi32(a, 16), _mm_srai_epi32(b, 16));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i), even);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + wq + i), odd);
  }
  for (; i < n; ++i) {
    d[i] = s[2 * i];
    d[wq + i] = s[2 * i + 1];
  }
}

// d[c] = s[c] - z for c < n, 16 at a time (the compiler's own loop ran byte by byte: its
// run-time overlap check between s and d failed).
inline void widen_row(const uint8_t* s, int64_t n, int16_t z, int16_t* d) {
  const __m256i vz = _mm256_set1_epi16(z);
  int64_t c = 0;
  for (; c + 16 <= n; c += 16) {
    const __m256i v =
        _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + c)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + c), _mm256_sub_epi16(v, vz));
  }
  for (; c < n; ++c) d[c] = static_cast<int16_t>(s[c] - z);
}

// One output row requantised from the registers (M < 1): no int32 row through memory.
inline void taps_row_requant(const int16_t* const* src, const int8_t* w, int ntaps, int32_t bias,
                             int64_t n, int64_t m0, int total, int32_t zo, uint8_t* out) {
  int32_t pairs[kMaxTaps / 2 + 1];
  tap_pairs(w, ntaps, pairs);
  for (int64_t ox = 0; ox < n; ox += 16) {
    __m256i v[2];
    taps16(src, pairs, ntaps, bias, ox, v);
    const __m128i bytes = requant16_avx2(v, 0, m0, total, zo);
    if (ox + 16 <= n) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + ox), bytes);
    } else {
      alignas(16) uint8_t tail[16];
      _mm_store_si128(reinterpret_cast<__m128i*>(tail), bytes);
      std::memcpy(out + ox, tail, static_cast<size_t>(n - ox));
    }
  }
}
#endif

inline void taps_row(const int16_t* const* src, const int8_t* w, int ntaps, int32_t bias, int64_t n,
                     int32_t* acc) {
#if defined(__AVX2__)
  int32_t pairs[kMaxTaps / 2 + 1];
  tap_pairs(w, ntaps, pairs);
  for (int64_t ox = 0; ox < n; ox += 16) {
    __m256i v[2];
    taps16(src, pairs, ntaps, bias, ox, v);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + ox), v[0]);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + ox + 8), v[1]);
  }
#else
  for (int64_t ox = 0; ox < n; ++ox) acc[ox] = bias;
  for (int t = 0; t < ntaps; ++t) {
    const int32_t wt = w[t];
    const int16_t* s = src[t];
    for (int64_t ox = 0; ox < n; ++ox) acc[ox] += wt * s[ox];
  }
#endif
}

void qdepthwise_plane_impl(const QDepthwiseParams& p, const uint8_t* in, uint8_t za,
                           const int8_t* w, int32_t bias, QuantMultiplier mult, uint8_t zo,
                           uint8_t* out, void* scratch) {
  const Layout l = layout(p);
  auto* plane = static_cast<int16_t*>(scratch);
  auto* acc = reinterpret_cast<int32_t*>(static_cast<uint8_t*>(scratch) + plane_bytes(l, p));
  int16_t* tmp =
      reinterpret_cast<int16_t*>(acc + p.out_h * l.owp) + p.out_h * l.owp / 2;  // wp values
  const int64_t pitch = p.stride_w * l.wq;  // one padded row, all phases
  const auto z = static_cast<int16_t>(za);
  std::memset(plane, 0, static_cast<size_t>(l.hp * pitch) * sizeof(int16_t));
  // Padded columns that hold input: [c0, c1).
  const int64_t c0 = std::min(l.wp, p.pad_left),
                c1 = std::max(c0, std::min(l.wp, p.pad_left + p.in_w));
  for (int64_t r = 0; r < l.hp; ++r) {
    const int64_t iy = r - p.pad_top;
    if (iy < 0 || iy >= p.in_h) continue;
    int16_t* d = plane + r * pitch;
    const uint8_t* s = in + iy * p.in_w - p.pad_left;
    if (p.stride_w == 1) {
#if defined(__AVX2__)
      const int64_t n = c1 - c0;
      if (n > 0 && n < 16 && (iy + 1) * p.in_w + 16 <= p.in_h * p.in_w) {
        // A short row (14x14 and 7x7 planes) as one vector: 16 bytes stay inside the plane;
        // the values past the row land in its padding and slack (wq >= c1 + 16), re-zeroed.
        const __m256i v =
            _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + c0)));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + c0),
                            _mm256_sub_epi16(v, _mm256_set1_epi16(z)));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + c1), _mm256_setzero_si256());
      } else {
        widen_row(s + c0, n, z, d + c0);
      }
#else
      for (int64_t c = c0; c < c1; ++c) d[c] = static_cast<int16_t>(s[c] - z);
#endif
    } else {  // the row in order, then one pass per phase
      for (int64_t c = 0; c < c0; ++c) tmp[c] = 0;
#if defined(__AVX2__)
      widen_row(s + c0, c1 - c0, z, tmp + c0);
#else
      for (int64_t c = c0; c < c1; ++c) tmp[c] = static_cast<int16_t>(s[c] - z);
#endif
      for (int64_t c = c1; c < l.wp; ++c) tmp[c] = 0;
      if (p.stride_w == 2) {
#if defined(__AVX2__)
        split_phases2(tmp, l.wp / 2, l.wq, d);
#else
        for (int64_t i = 0; i < l.wp / 2; ++i) {
          d[i] = tmp[2 * i];
          d[l.wq + i] = tmp[2 * i + 1];
        }
#endif
        if (l.wp % 2 != 0) d[l.wp / 2] = tmp[l.wp - 1];
      } else {
        for (int64_t c = 0; c < l.wp; ++c) d[(c % p.stride_w) * l.wq + c / p.stride_w] = tmp[c];
      }
    }
  }
  const int ntaps = static_cast<int>(p.kernel_h * p.kernel_w);
  int64_t tap_at[kMaxTaps];
  for (int64_t ky = 0; ky < p.kernel_h; ++ky)
    for (int64_t kx = 0; kx < p.kernel_w; ++kx) {
      // Phase and offset of the tap's column; no division for stride 1 (called per plane:
      // 18 64-bit divisions cost about as much as a 7x7 plane's taps).
      const int64_t c = kx * p.dilation_w;
      const int64_t phase = p.stride_w == 1 ? 0 : c % p.stride_w;
      const int64_t at = p.stride_w == 1 ? c : c / p.stride_w;
      tap_at[ky * p.kernel_w + kx] = ky * p.dilation_h * pitch + phase * l.wq + at;
    }
  const int16_t* src[kMaxTaps];
#if defined(__AVX2__)
  if (mult.shift <= 0) {
    const int total = std::min(62, 31 - mult.shift);
    if (ntaps == 9) {
      rows_requant_fixed<9>(plane, p.stride_h * pitch, tap_at, w, bias, p.out_h, p.out_w, mult.m0,
                            total, zo, out);
      return;
    }
    for (int64_t oy = 0; oy < p.out_h; ++oy) {
      const int16_t* row = plane + oy * p.stride_h * pitch;
      for (int t = 0; t < ntaps; ++t) src[t] = row + tap_at[t];
      taps_row_requant(src, w, ntaps, bias, p.out_w, mult.m0, total, zo, out + oy * p.out_w);
    }
    return;
  }
#endif
  for (int64_t oy = 0; oy < p.out_h; ++oy) {
    const int16_t* row = plane + oy * p.stride_h * pitch;
    for (int t = 0; t < ntaps; ++t) src[t] = row + tap_at[t];
    taps_row(src, w, ntaps, bias, p.out_w, acc + oy * l.owp);
  }
  if (l.owp == p.out_w) {
    requantize_row(acc, p.out_h * p.out_w, 0, mult, zo, out);
    return;
  }
  // One pass over the padded rows (full vectors), then the rows' valid columns.
  auto* bytes = reinterpret_cast<uint8_t*>(acc + p.out_h * l.owp);
  requantize_row(acc, p.out_h * l.owp, 0, mult, zo, bytes);
  for (int64_t oy = 0; oy < p.out_h; ++oy)
    std::memcpy(out + oy * p.out_w, bytes + oy * l.owp, static_cast<size_t>(p.out_w));
}

}  // namespace

}  // namespace kernels
}  // namespace edgepack

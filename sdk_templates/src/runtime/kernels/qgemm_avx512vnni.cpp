// SPDX-License-Identifier: Apache-2.0
// The int8 micro-kernel of qgemm.h with AVX-512 VNNI (compiled with -mavx512f/bw/vl/vnni; chosen
// at run time when the CPU has all four). One packed panel quad (kQgemmNr columns x 4 bytes) is
// one zmm, and vpdpbusd multiplies its u8 by a broadcast row of 4 s8 weights and adds the four
// products of each column into its int32 lane: exact on full-range weights (no int16 pair sums as
// vpmaddubsw), so the weights are never split (qgemm.h).
//
// Tile: 4 weight rows x up to 4 panels = 16 zmm accumulators. Per quad, P panel loads and 4
// broadcast weights feed 4P vpdpbusd: each weight broadcast serves P panels and each panel load
// 4 rows, and 16 independent accumulators hide vpdpbusd's latency (one row x one panel, as the
// AVX2 tile, would be 4 dependent chains). The epilogue requantises straight from the registers
// into the output, the last panel of a group with masked stores when it is narrower than 16.
#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AVX512VL__) || \
    !defined(__AVX512VNNI__)
#error "qgemm_avx512vnni.cpp needs -mavx512f -mavx512bw -mavx512vl -mavx512vnni"
#endif

// GCC 12.2's AVX-512 intrinsics start unmasked operations from _mm512_undefined_epi32() (`__Y =
// __Y`) and -Wmaybe-uninitialized reports that once inlined (GCC bug 105593, fixed in 12.3).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "runtime/kernels/qgemm.h"

namespace edgepack {
namespace kernels {

namespace {

constexpr int kMaxPanels = 4;  // panels per call of the accumulation below

inline __m512i bcast4(const int8_t* w) {
  int32_t v;
  std::memcpy(&v, w, 4);
  return _mm512_set1_epi32(v);  // folds into vpdpbusd's {1to16} memory operand
}

// c[r][p] = the 4 rows of the weight block wb times panel p (panels `stride` bytes apart).
template <int P>
inline void accumulate(const int8_t* wb, const uint8_t* panel, size_t stride, int64_t quads,
                       int halves, __m512i c[4][P]) {
  static_assert(kQgemmMr == 4 && kQgemmNr == 16, "the tile below is 4 rows x 16 columns");
  for (int r = 0; r < 4; ++r)
    for (int p = 0; p < P; ++p) c[r][p] = _mm512_setzero_si512();
  for (int64_t q = 0; q < quads; ++q, panel += 64) {
    __m512i x[P];
    for (int p = 0; p < P; ++p) x[p] = _mm512_loadu_si512(panel + p * stride);
    for (int h = 0; h < halves; ++h, wb += 16) {
      for (int r = 0; r < 4; ++r) {
        const __m512i w = bcast4(wb + 4 * r);
        for (int p = 0; p < P; ++p) c[r][p] = _mm512_dpbusd_epi32(c[r][p], x[p], w);
      }
    }
  }
}

// One output row's requantisation constants (QRowQuant), as vectors.
struct RowConsts {
  __m512i add, m0, half, zo;
  __m128i shift;
};

inline RowConsts row_consts(const QRowQuant& q, int32_t zo) {
  return {_mm512_set1_epi32(q.add), _mm512_set1_epi64(q.m0),
          _mm512_set1_epi64(int64_t(1) << (q.total - 1)), _mm512_set1_epi32(zo),
          _mm_cvtsi32_si128(q.total)};
}

// 16 int32 sums requantised as requant16_avx2 (qrequant_avx2.h) does, the same bytes: |a + add|
// times m0 in 64 bits, + half, shifted right by total, capped at 2^20, the sign put back, + zo,
// then clamped to [0, 255] (max with 0, then vpmovusdb's unsigned saturation). Left as int32.
inline __m512i requant16(__m512i a, const RowConsts& k) {
  const __m512i v = _mm512_add_epi32(a, k.add);
  const __m512i x = _mm512_abs_epi32(v);  // |INT32_MIN| reads as 2^31 unsigned: still exact
  const __m512i even =
      _mm512_srl_epi64(_mm512_add_epi64(_mm512_mul_epu32(x, k.m0), k.half), k.shift);
  const __m512i odd = _mm512_srl_epi64(
      _mm512_add_epi64(_mm512_mul_epu32(_mm512_srli_epi64(x, 32), k.m0), k.half), k.shift);
  const __m512i r =
      _mm512_min_epu32(_mm512_mask_blend_epi32(0xaaaa, even, _mm512_slli_epi64(odd, 32)),
                       _mm512_set1_epi32(1 << 20));
  const __m512i zero = _mm512_setzero_si512();
  const __m512i s = _mm512_mask_sub_epi32(r, _mm512_cmplt_epi32_mask(v, zero), zero, r);
  return _mm512_max_epi32(_mm512_add_epi32(s, k.zo), zero);
}

// P panels of the group, requantised into out (row stride ldo, panel p at column 16 p); the last
// panel stores only the columns of last_mask.
template <int P>
void panels_requant(const int8_t* wb, const uint8_t* panel, size_t stride, int64_t quads,
                    int halves, const QRowQuant* rq, int rows, int32_t zo, uint8_t* out,
                    int64_t ldo, __mmask16 last_mask) {
  __m512i c[4][P];
  accumulate<P>(wb, panel, stride, quads, halves, c);
  for (int r = 0; r < rows; ++r) {
    const RowConsts k = row_consts(rq[r], zo);
    uint8_t* d = out + r * ldo;
    for (int p = 0; p < P; ++p)
      _mm512_mask_cvtusepi32_storeu_epi8(d + 16 * p, p == P - 1 ? last_mask : __mmask16(0xffff),
                                         requant16(c[r][p], k));
  }
}

}  // namespace

void qgemm_tile_avx512vnni(const int8_t* wb, const uint8_t* panel, int64_t quads, int halves,
                           int32_t* acc) {
  __m512i c[4][1];
  accumulate<1>(wb, panel, 0, quads, halves, c);
  for (int r = 0; r < 4; ++r) _mm512_storeu_si512(acc + r * kQgemmNr, c[r][0]);
}

void qgemm_panels_requant_avx512vnni(const int8_t* wb, const uint8_t* panel, size_t stride,
                                     int64_t count, int last_cols, int64_t quads, int halves,
                                     const QRowQuant* rq, int rows, int32_t zo, uint8_t* out,
                                     int64_t ldo) {
  for (int64_t i = 0; i < count; i += kMaxPanels) {
    const int64_t left = count - i;
    const int cols = left <= kMaxPanels ? last_cols : kQgemmNr;
    const auto mask = static_cast<__mmask16>((uint32_t(1) << cols) - 1);
    const uint8_t* p = panel + size_t(i) * stride;
    uint8_t* d = out + i * kQgemmNr;
    switch (left < kMaxPanels ? left : kMaxPanels) {
      case 1:
        panels_requant<1>(wb, p, stride, quads, halves, rq, rows, zo, d, ldo, mask);
        break;
      case 2:
        panels_requant<2>(wb, p, stride, quads, halves, rq, rows, zo, d, ldo, mask);
        break;
      case 3:
        panels_requant<3>(wb, p, stride, quads, halves, rq, rows, zo, d, ldo, mask);
        break;
      default:
        panels_requant<4>(wb, p, stride, quads, halves, rq, rows, zo, d, ldo, mask);
        break;
    }
  }
}

}  // namespace kernels
}  // namespace edgepack

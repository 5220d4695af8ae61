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

// Per output row: the constants of the float form below (FastRow), or none (M >= 1/2).
//
// The exact result is floor(Z) clamped to [0, 255], Z = v M + zo + 1/2 (v = acc + add; for v < 0
// at a tie, Z an integer, the exact rounding away from zero gives Z - 1). In float32,
// z = fma(float(v), float(M), zo + 1/2 -+ eps) is within 1.25 * 2^-14 of Z -+ eps wherever the
// output is not saturated (|Z| <= 257, so |v M| <= 513: float(v) and float(M) each within a
// relative 2^-24, the fma's rounding 2^-24 of |z|), and eps = 2^-13 is more than that: where
// floor(z-) == floor(z+) that is floor(Z), and Z is no integer (no tie). Elsewhere both sides
// saturate alike (M < 1/2 keeps |z| < 2^31 for the conversion). A row with a lane where the two
// differ (about 2^-12 of the lanes) is recomputed by the exact integer form (requant16).
struct FastRow {
  __m512i add;
  __m512 m, lo, hi;
};

constexpr float kEps = 1.0f / 8192.0f;

inline bool fast_row(const QRowQuant& q, int32_t zo, FastRow* f) {
  if (q.total < 32) return false;
  f->add = _mm512_set1_epi32(q.add);
  f->m = _mm512_set1_ps(q.mf);
  f->lo = _mm512_set1_ps(float(zo) + 0.5f - kEps);
  f->hi = _mm512_set1_ps(float(zo) + 0.5f + kEps);
  return true;
}

// floor(z-) of 16 lanes; *bad gets the lanes where floor(z+) differs.
inline __m512i fast16(__m512i a, const FastRow& f, __mmask16* bad) {
  constexpr int kRn = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
  constexpr int kRd = _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC;
  const __m512 v = _mm512_cvt_roundepi32_ps(_mm512_add_epi32(a, f.add), kRn);
  const __m512i lo = _mm512_cvt_roundps_epi32(_mm512_fmadd_round_ps(v, f.m, f.lo, kRn), kRd);
  const __m512i hi = _mm512_cvt_roundps_epi32(_mm512_fmadd_round_ps(v, f.m, f.hi, kRn), kRd);
  *bad |= _mm512_cmpneq_epi32_mask(lo, hi);
  return lo;
}

// Four vectors of int32 (panels 0..3 of a row) as 64 bytes saturated to [0, 255], in order.
inline __m512i pack64(const __m512i n[4]) {
  const __m512i b =
      _mm512_packus_epi16(_mm512_packs_epi32(n[0], n[1]), _mm512_packs_epi32(n[2], n[3]));
  // dword 4 l + j of b holds panel j's lanes 4 l .. 4 l + 3.
  const __m512i idx = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
  return _mm512_permutexvar_epi32(idx, b);
}

// P panels of the group, requantised into out (row stride ldo, panel p at column 16 p); the last
// panel stores only its first last_cols columns.
template <int P>
void panels_requant(const int8_t* wb, const uint8_t* panel, size_t stride, int64_t quads,
                    int halves, const QRowQuant* rq, int rows, int32_t zo, uint8_t* out,
                    int64_t ldo, int last_cols) {
  __m512i c[4][P];
  accumulate<P>(wb, panel, stride, quads, halves, c);
  const int cols = 16 * (P - 1) + last_cols;
  const __mmask64 mask = cols == 64 ? ~__mmask64(0) : (__mmask64(1) << cols) - 1;
  for (int r = 0; r < rows; ++r) {
    __m512i n[4];
    for (int p = P; p < 4; ++p) n[p] = _mm512_setzero_si512();
    FastRow f;
    __mmask16 bad = 0;
    if (fast_row(rq[r], zo, &f)) {
      for (int p = 0; p < P; ++p) n[p] = fast16(c[r][p], f, &bad);
    } else {
      bad = 1;
    }
    if (bad != 0) {
      const RowConsts k = row_consts(rq[r], zo);
      for (int p = 0; p < P; ++p) n[p] = requant16(c[r][p], k);
    }
    _mm512_mask_storeu_epi8(out + r * ldo, mask, pack64(n));
  }
}

// The last few columns of a group (a "tail" of R = 1..kQgemmTailMax pixels) from their expanded
// copies (qgemm.cpp, expand_tail): 64 bytes per 4 quads of a pixel, its quad q + i in the 32-bit
// lanes 4 i .. 4 i + 3, so that one vpdpbusd with 4 quads of the weight block (64 contiguous
// bytes: quad q + i, row r in lane 4 i + r) makes 64 useful products where a 16-column panel
// with R columns in use would make 4 R. The lanes of a row are added at the end. Each weight
// load serves R pixels; with 1 or 2 pixels more chains (over alternate quads) hide vpdpbusd's
// latency. The last partial 4 quads read the weights masked (the block ends there).
template <int R>
void tail_requant(const int8_t* wb, const uint8_t* xt, size_t tstride, int64_t quads,
                  const QRowQuant* rq, int rows, int32_t zo, uint8_t* out, int64_t ldo) {
  constexpr int U = R == 1 ? 4 : (R == 2 ? 2 : 1);
  __m512i c[U][R];
  for (int u = 0; u < U; ++u)
    for (int t = 0; t < R; ++t) c[u][t] = _mm512_setzero_si512();
  const int64_t full = quads / 4;
  int64_t v = 0;
  for (; v + U <= full; v += U)
    for (int u = 0; u < U; ++u) {
      const __m512i w = _mm512_loadu_si512(wb + (v + u) * 64);
      for (int t = 0; t < R; ++t)
        c[u][t] =
            _mm512_dpbusd_epi32(c[u][t], _mm512_loadu_si512(xt + t * tstride + (v + u) * 64), w);
    }
  for (; v < full; ++v) {
    const __m512i w = _mm512_loadu_si512(wb + v * 64);
    for (int t = 0; t < R; ++t)
      c[0][t] = _mm512_dpbusd_epi32(c[0][t], _mm512_loadu_si512(xt + t * tstride + v * 64), w);
  }
  if (quads > full * 4) {  // the expanded pixels are 0 there, the weights past the block unread
    const auto mask = static_cast<__mmask16>((1u << (4 * (quads - full * 4))) - 1);
    const __m512i w = _mm512_maskz_loadu_epi32(mask, wb + full * 64);
    for (int t = 0; t < R; ++t)
      c[0][t] = _mm512_dpbusd_epi32(c[0][t], _mm512_loadu_si512(xt + t * tstride + full * 64), w);
  }
  for (int t = 0; t < R; ++t) {
    __m512i s = c[0][t];
    for (int u = 1; u < U; ++u) s = _mm512_add_epi32(s, c[u][t]);
    const __m256i h = _mm256_add_epi32(_mm512_castsi512_si256(s), _mm512_extracti64x4_epi64(s, 1));
    const __m128i q = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
    alignas(16) int32_t row[4];
    _mm_store_si128(reinterpret_cast<__m128i*>(row), q);
    for (int r = 0; r < rows; ++r) {
      // requant() of qgemm.cpp: round half away from zero on |v| * m0, + zo, clamped.
      const int32_t a = static_cast<int32_t>(uint32_t(row[r]) + uint32_t(rq[r].add));
      const int64_t ab = int64_t(a) * rq[r].m0;
      const int64_t half = int64_t(1) << (rq[r].total - 1);
      const int64_t y =
          (ab >= 0 ? (ab + half) >> rq[r].total : -((-ab + half) >> rq[r].total)) + zo;
      out[r * ldo + t] = static_cast<uint8_t>(y < 0 ? 0 : (y > 255 ? 255 : y));
    }
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
                                     int64_t count, int last_cols, const uint8_t* tail,
                                     size_t tail_stride, int64_t quads, int halves,
                                     const QRowQuant* rq, int rows, int32_t zo, uint8_t* out,
                                     int64_t ldo) {
  // The full panels first, the tail after them: the panels' many vpdpbusd per weight byte hide
  // the weight block's first reads from memory, which the tail's few would wait for.
  const int64_t full = tail != nullptr ? count - 1 : count;
  const int full_cols = tail != nullptr ? kQgemmNr : last_cols;
  for (int64_t i = 0; i < full; i += kMaxPanels) {
    const int64_t left = full - i;
    const int cols = left <= kMaxPanels ? full_cols : kQgemmNr;
    const uint8_t* p = panel + size_t(i) * stride;
    uint8_t* d = out + i * kQgemmNr;
    switch (left < kMaxPanels ? left : kMaxPanels) {
      case 1:
        panels_requant<1>(wb, p, stride, quads, halves, rq, rows, zo, d, ldo, cols);
        break;
      case 2:
        panels_requant<2>(wb, p, stride, quads, halves, rq, rows, zo, d, ldo, cols);
        break;
      case 3:
        panels_requant<3>(wb, p, stride, quads, halves, rq, rows, zo, d, ldo, cols);
        break;
      default:
        panels_requant<4>(wb, p, stride, quads, halves, rq, rows, zo, d, ldo, cols);
        break;
    }
  }
  if (tail == nullptr) return;
  // the last panel's last_cols columns from their expanded copies
  uint8_t* d = out + full * kQgemmNr;
  switch (last_cols) {
    case 1:
      tail_requant<1>(wb, tail, tail_stride, quads, rq, rows, zo, d, ldo);
      break;
    case 2:
      tail_requant<2>(wb, tail, tail_stride, quads, rq, rows, zo, d, ldo);
      break;
    case 3:
      tail_requant<3>(wb, tail, tail_stride, quads, rq, rows, zo, d, ldo);
      break;
    default:
      tail_requant<4>(wb, tail, tail_stride, quads, rq, rows, zo, d, ldo);
      break;
  }
}

// A panel gathered from an implicit operand (qgemm.h, QGemmGather). Where the panel's columns
// span less than 64 bytes: per quad, the 64 bytes from each of its 4 rows at the panel's first
// column, and two vpermt2b pick column t's byte (col[p0 + t] - col[p0]) of rows 0 and 1, and of
// rows 2 and 3, into bytes 4 t + i. Within 32 bytes (stride 1: ResNet-18's 3x3 layers): 32
// bytes from each row, rows 0-1 and 2-3 in two registers, one vpermt2b (layer1's gather 0.25 of
// its time less, 0.03 ms per layer). Up to 128 bytes (a stride-2 panel across output rows): 128
// bytes per row, one vpermt2b each, three byte blends.
__attribute__((target("avx512vbmi"))) void qgemm_pack_gather_avx512vbmi(
    const uint8_t* base, const int32_t* row, const int32_t* col, int64_t quads, int64_t p0,
    int64_t cols, uint8_t* panel) {
  alignas(64) uint8_t id[64];
  const int32_t c0 = col[p0];
  const bool wide = col[p0 + cols - 1] - c0 >= 64;
  if (col[p0 + cols - 1] - c0 < 32) {  // 32 bytes per row, rows 0-3 in one two-register table
    for (int t = 0; t < kQgemmNr; ++t) {
      const auto o = static_cast<uint8_t>(t < cols ? col[p0 + t] - c0 : 0);
      for (int i = 0; i < 4; ++i) id[4 * t + i] = uint8_t(o + 32 * i);
    }
    const __m512i idx = _mm512_load_si512(id);
    const uint8_t* b = base + c0;
    const auto two = [b](const int32_t* r) {
      return _mm512_inserti64x4(
          _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + r[0]))),
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + r[1])), 1);
    };
    for (int64_t q = 0; q < quads; ++q, row += 4)
      _mm512_storeu_si512(panel + q * 64, _mm512_permutex2var_epi8(two(row), idx, two(row + 2)));
    return;
  }
  for (int t = 0; t < kQgemmNr; ++t) {
    const auto o = static_cast<uint8_t>(t < cols ? col[p0 + t] - c0 : 0);
    for (int i = 0; i < 4; ++i) id[4 * t + i] = wide || i % 2 == 0 ? o : uint8_t(o | 64);
  }
  const __m512i idx = _mm512_load_si512(id);
  const uint8_t* b = base + c0;
  if (!wide) {
    for (int64_t q = 0; q < quads; ++q, row += 4) {
      const __m512i r01 = _mm512_permutex2var_epi8(_mm512_loadu_si512(b + row[0]), idx,
                                                   _mm512_loadu_si512(b + row[1]));
      const __m512i r23 = _mm512_permutex2var_epi8(_mm512_loadu_si512(b + row[2]), idx,
                                                   _mm512_loadu_si512(b + row[3]));
      _mm512_storeu_si512(panel + q * 64,
                          _mm512_mask_blend_epi8(__mmask64(0xccccccccccccccccULL), r01, r23));
    }
    return;
  }
  for (int64_t q = 0; q < quads; ++q, row += 4) {
    __m512i r[4];
    for (int i = 0; i < 4; ++i)
      r[i] = _mm512_permutex2var_epi8(_mm512_loadu_si512(b + row[i]), idx,
                                      _mm512_loadu_si512(b + row[i] + 64));
    __m512i v = _mm512_mask_blend_epi8(__mmask64(0x2222222222222222ULL), r[0], r[1]);
    v = _mm512_mask_blend_epi8(__mmask64(0x4444444444444444ULL), v, r[2]);
    v = _mm512_mask_blend_epi8(__mmask64(0x8888888888888888ULL), v, r[3]);
    _mm512_storeu_si512(panel + q * 64, v);
  }
}

}  // namespace kernels
}  // namespace edgepack

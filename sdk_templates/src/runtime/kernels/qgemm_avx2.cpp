// SPDX-License-Identifier: Apache-2.0
// The int8 micro-kernel of qgemm.h on AVX2 (compiled with -mavx2; chosen at run time): a
// kQgemmMr x kQgemmNr tile in eight registers. Per quad, vpmaddubsw multiplies the panel's
// u8 by a broadcast row of 4 s8 weights and sums pairs in int16 (exact: |w| <= 64, qgemm.h),
// vpmaddwd by ones sums those pairs into int32.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "runtime/kernels/qgemm.h"

namespace edgepack {
namespace kernels {

namespace {

inline __m256i bcast4(const int8_t* w) {
  int32_t v;
  std::memcpy(&v, w, 4);
  return _mm256_set1_epi32(v);
}

inline __m256i dot4(__m256i x, __m256i w, __m256i ones) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(x, w), ones);
}

}  // namespace

void qgemm_tile_avx2(const int8_t* wb, const uint8_t* panel, int64_t quads, int halves,
                     int32_t* acc) {
  static_assert(kQgemmMr == 4 && kQgemmNr == 16, "the tile below is 4 x 16");
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
          c30 = c00, c31 = c00;
  for (int64_t q = 0; q < quads; ++q, panel += 64) {
    const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panel));
    const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panel + 32));
    for (int h = 0; h < halves; ++h, wb += 16) {
      __m256i w = bcast4(wb);
      c00 = _mm256_add_epi32(c00, dot4(x0, w, ones));
      c01 = _mm256_add_epi32(c01, dot4(x1, w, ones));
      w = bcast4(wb + 4);
      c10 = _mm256_add_epi32(c10, dot4(x0, w, ones));
      c11 = _mm256_add_epi32(c11, dot4(x1, w, ones));
      w = bcast4(wb + 8);
      c20 = _mm256_add_epi32(c20, dot4(x0, w, ones));
      c21 = _mm256_add_epi32(c21, dot4(x1, w, ones));
      w = bcast4(wb + 12);
      c30 = _mm256_add_epi32(c30, dot4(x0, w, ones));
      c31 = _mm256_add_epi32(c31, dot4(x1, w, ones));
    }
  }
  __m256i* out = reinterpret_cast<__m256i*>(acc);
  _mm256_storeu_si256(out + 0, c00);
  _mm256_storeu_si256(out + 1, c01);
  _mm256_storeu_si256(out + 2, c10);
  _mm256_storeu_si256(out + 3, c11);
  _mm256_storeu_si256(out + 4, c20);
  _mm256_storeu_si256(out + 5, c21);
  _mm256_storeu_si256(out + 6, c30);
  _mm256_storeu_si256(out + 7, c31);
}

// 16 requantised bytes, for M < 1 (shift <= 0): d[t] = clamp(zo + round(((a[t] + add) * m0) >>
// total), 0, 255), rounding half away from zero as apply_multiplier() does (on |x|, the sign put
// back after the shift).
void qgemm_requant16_avx2(const int32_t* a, int32_t add, int64_t m0, int total, int32_t zo,
                          uint8_t* d) {
  const __m256i vadd = _mm256_set1_epi32(add), vm0 = _mm256_set1_epi64x(m0);
  const __m256i half = _mm256_set1_epi64x(int64_t(1) << (total - 1));
  const __m128i shift = _mm_cvtsi32_si128(total);
  const __m256i vzo = _mm256_set1_epi32(zo);
  __m256i y[2];
  for (int i = 0; i < 2; ++i) {
    const __m256i v =
        _mm256_add_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a) + i), vadd);
    const __m256i x = _mm256_abs_epi32(v);  // |INT32_MIN| reads as 2^31 unsigned: still exact
    const __m256i even = _mm256_srl_epi64(_mm256_add_epi64(_mm256_mul_epu32(x, vm0), half), shift);
    const __m256i odd = _mm256_srl_epi64(
        _mm256_add_epi64(_mm256_mul_epu32(_mm256_srli_epi64(x, 32), vm0), half), shift);
    // r < 2^31 since M < 1 (the caller's condition); capped so that adding zo cannot wrap.
    const __m256i r = _mm256_min_epu32(_mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xaa),
                                       _mm256_set1_epi32(1 << 20));
    y[i] = _mm256_add_epi32(_mm256_sign_epi32(r, v), vzo);
  }
  // int32 -> int16 -> uint8 with saturation (the clamp); packs work per 128-bit lane.
  const __m256i w16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(y[0], y[1]), 0xd8);
  const __m128i b = _mm_packus_epi16(_mm256_castsi256_si128(w16), _mm256_extracti128_si256(w16, 1));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(d), b);
}

}  // namespace kernels
}  // namespace edgepack

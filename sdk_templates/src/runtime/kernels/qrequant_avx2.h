// SPDX-License-Identifier: Apache-2.0
// The AVX2 fixed-point requantisation shared by the int8 kernels compiled with -mavx2
// (qgemm_avx2.cpp, qdepthwise_avx2.cpp): the bytes of requantize_row() (qgemm.h), from registers.
#pragma once

#if !defined(__AVX2__)
#error "qrequant_avx2.h is for translation units compiled with -mavx2"
#endif

#include <immintrin.h>

#include <cstdint>

namespace edgepack {
namespace kernels {

// 16 requantised bytes from two vectors of 8 int32 sums, for M < 1 (shift <= 0): clamp(zo +
// round(((a + add) * m0) >> total), 0, 255), rounding half away from zero as apply_multiplier()
// does (on |x|, the sign put back after the shift). total = 31 - shift and m0 of the
// QuantMultiplier (qgemm.h).
inline __m128i requant16_avx2(const __m256i a[2], int32_t add, int64_t m0, int total, int32_t zo) {
  const __m256i vadd = _mm256_set1_epi32(add), vm0 = _mm256_set1_epi64x(m0);
  const __m256i half = _mm256_set1_epi64x(int64_t(1) << (total - 1));
  const __m128i shift = _mm_cvtsi32_si128(total);
  const __m256i vzo = _mm256_set1_epi32(zo);
  __m256i y[2];
  for (int i = 0; i < 2; ++i) {
    const __m256i v = _mm256_add_epi32(a[i], vadd);
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
  return _mm_packus_epi16(_mm256_castsi256_si128(w16), _mm256_extracti128_si256(w16, 1));
}

}  // namespace kernels
}  // namespace edgepack

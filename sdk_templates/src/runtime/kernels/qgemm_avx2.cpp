// SPDX-License-Identifier: Apache-2.0
// int8 dot product for qgemm.h on AVX2 (compiled with -mavx2; chosen at run time).
// u8 and s8 are widened to s16 and multiplied pairwise into s32 with _mm256_madd_epi16: unlike
// _mm256_maddubs_epi16 (u8 x s8 pairs summed in s16) nothing saturates, so the result is exact.
#include <immintrin.h>

#include <cstdint>

namespace edgepack {
namespace kernels {

int32_t qdot_avx2(const uint8_t* a, const int8_t* w, int64_t k) {
  __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
  int64_t i = 0;
  for (; i + 32 <= k; i += 32) {
    const __m128i a0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i));
    const __m128i a1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i + 16));
    const __m128i w0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i));
    const __m128i w1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i + 16));
    acc0 = _mm256_add_epi32(acc0,
                            _mm256_madd_epi16(_mm256_cvtepu8_epi16(a0), _mm256_cvtepi8_epi16(w0)));
    acc1 = _mm256_add_epi32(acc1,
                            _mm256_madd_epi16(_mm256_cvtepu8_epi16(a1), _mm256_cvtepi8_epi16(w1)));
  }
  for (; i + 16 <= k; i += 16) {
    const __m128i a0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i));
    const __m128i w0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i));
    acc0 = _mm256_add_epi32(acc0,
                            _mm256_madd_epi16(_mm256_cvtepu8_epi16(a0), _mm256_cvtepi8_epi16(w0)));
  }
  const __m256i acc = _mm256_add_epi32(acc0, acc1);
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  int32_t total = _mm_cvtsi128_si32(s);
  for (; i < k; ++i) total += int32_t(a[i]) * int32_t(w[i]);
  return total;
}

}  // namespace kernels
}  // namespace edgepack

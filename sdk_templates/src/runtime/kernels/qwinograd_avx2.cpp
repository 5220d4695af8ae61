// SPDX-License-Identifier: Apache-2.0
// The GEMM micro-kernel of the int8 Winograd (qwinograd.h) on AVX2 (compiled with -mavx2; chosen
// at run time): kQWinoAvx2Mr output channels x 16 tiles in registers. Per channel pair, two loads
// hold the 16 tiles' int16 pairs; vpmaddwd multiplies them by one row's broadcast weight pair and
// sums each pair into int32 (exact: |u v| <= 1143 * 1020, two of them fit easily), vpaddd
// accumulates modulo 2^32.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "runtime/kernels/qwinograd_impl.h"

namespace edgepack {
namespace kernels {

extern const int kQWinoAvx2Mr;
constexpr int kMr = 6;
const int kQWinoAvx2Mr = kMr;

namespace {

inline void gemm(const int16_t* u, const int16_t* v, int64_t pairs, int64_t vstride, int32_t* out) {
  constexpr int mr = kMr;
  static_assert(kQWinoNr == 16, "two vectors of 8 tiles");
  __m256i c[mr][2];
  for (int r = 0; r < mr; ++r) c[r][0] = c[r][1] = _mm256_setzero_si256();
  for (int64_t p = 0; p < pairs; ++p, u += 2 * mr, v += vstride) {
    const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(v));
    const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(v + 16));
    for (int r = 0; r < mr; ++r) {
      int32_t w;
      std::memcpy(&w, u + 2 * r, 4);
      const __m256i wv = _mm256_set1_epi32(w);
      c[r][0] = _mm256_add_epi32(c[r][0], _mm256_madd_epi16(x0, wv));
      c[r][1] = _mm256_add_epi32(c[r][1], _mm256_madd_epi16(x1, wv));
    }
  }
  for (int r = 0; r < mr; ++r) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + r * 16), c[r][0]);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + r * 16 + 8), c[r][1]);
  }
}

}  // namespace

void qwino_task_avx2(const QWinoTask& t) {
  qwino_task(t, gemm);
}

}  // namespace kernels
}  // namespace edgepack

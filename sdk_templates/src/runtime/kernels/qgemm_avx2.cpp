// SPDX-License-Identifier: Apache-2.0
// The int8 micro-kernel of qgemm.h on AVX2 (compiled with -mavx2; chosen at run time): a
// kQgemmMr x kQgemmNr tile in eight registers, stored as int32 or requantised to bytes in
// registers (qgemm_tile_requant_avx2: no int32 round trip through memory). Per quad, vpmaddubsw
// multiplies the panel's u8 by a broadcast row of 4 s8 weights and sums pairs in int16 (exact:
// |w| <= 64, qgemm.h), vpmaddwd by ones sums those pairs into int32.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "runtime/kernels/qgemm.h"
#include "runtime/kernels/qrequant_avx2.h"

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

// The 4 x 16 tile in eight registers (c[row][half]).
struct Tile {
  __m256i c[4][2];
};

inline Tile accumulate(const int8_t* wb, const uint8_t* panel, int64_t quads, int halves) {
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
  return {{{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}}};
}

}  // namespace

void qgemm_tile_avx2(const int8_t* wb, const uint8_t* panel, int64_t quads, int halves,
                     int32_t* acc) {
  const Tile t = accumulate(wb, panel, quads, halves);
  __m256i* out = reinterpret_cast<__m256i*>(acc);
  for (int r = 0; r < 4; ++r) {
    _mm256_storeu_si256(out + 2 * r, t.c[r][0]);
    _mm256_storeu_si256(out + 2 * r + 1, t.c[r][1]);
  }
}

void qgemm_tile_requant_avx2(const int8_t* wb, const uint8_t* panel, int64_t quads, int halves,
                             const QRowQuant* rq, int rows, int32_t zo, uint8_t* out, int64_t ldo) {
  const Tile t = accumulate(wb, panel, quads, halves);
  for (int r = 0; r < rows; ++r)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + r * ldo),
                     requant16_avx2(t.c[r], rq[r].add, rq[r].m0, rq[r].total, zo));
}

void qgemm_requant16_avx2(const int32_t* a, int32_t add, int64_t m0, int total, int32_t zo,
                          uint8_t* d) {
  const __m256i v[2] = {_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a)),
                        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a) + 1)};
  _mm_storeu_si128(reinterpret_cast<__m128i*>(d), requant16_avx2(v, add, m0, total, zo));
}

}  // namespace kernels
}  // namespace edgepack

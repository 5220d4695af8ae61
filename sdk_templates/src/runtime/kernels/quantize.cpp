// SPDX-License-Identifier: Apache-2.0
#include "runtime/kernels/quantize.h"

#include <cstring>
#include <limits>
#include <type_traits>
#if defined(__x86_64__) || defined(__i386__)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored \
    "-Wmaybe-uninitialized"  // GCC 12.2's AVX-512 intrinsics (bug 105593)
#endif
#include <immintrin.h>
#endif

#include "runtime/kernels/cpu_isa.h"

namespace edgepack {
namespace kernels {
namespace {

void lookup_scalar(const uint8_t* x, uint8_t* y, int64_t n, const uint8_t* table, int64_t i) {
  for (; i + 4 <= n; i += 4) {  // four independent loads per step
    const uint8_t a = table[x[i]], b = table[x[i + 1]], c = table[x[i + 2]], d = table[x[i + 3]];
    y[i] = a;
    y[i + 1] = b;
    y[i + 2] = c;
    y[i + 3] = d;
  }
  for (; i < n; ++i) y[i] = table[x[i]];
}

#if defined(__x86_64__) || defined(__i386__)
// 64 bytes at a time with the table as 16 rows of 16 (vpshufb): row h answers the bytes whose
// high nibble is h. x - 16h, plus 0x70 with unsigned saturation, has its top bit clear (and its
// low nibble intact) exactly for those bytes, and vpshufb gives 0 where the top bit is set; the
// 16 answers are or-ed. ~1.5x the scalar loop (YOLOv8n's 400 KB SiLU planes, same bytes).
__attribute__((target("avx2"))) int64_t lookup_avx2(const uint8_t* x, uint8_t* y, int64_t n,
                                                    const uint8_t* table) {
  __m256i rows[16];
  for (int h = 0; h < 16; ++h)
    rows[h] = _mm256_broadcastsi128_si256(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(table + 16 * h)));
  const __m256i sixteen = _mm256_set1_epi8(16), top = _mm256_set1_epi8(0x70);
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i));
    __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i + 32));
    __m256i ra = _mm256_shuffle_epi8(rows[0], _mm256_adds_epu8(a, top));
    __m256i rb = _mm256_shuffle_epi8(rows[0], _mm256_adds_epu8(b, top));
    for (int h = 1; h < 16; ++h) {
      a = _mm256_sub_epi8(a, sixteen);
      b = _mm256_sub_epi8(b, sixteen);
      ra = _mm256_or_si256(ra, _mm256_shuffle_epi8(rows[h], _mm256_adds_epu8(a, top)));
      rb = _mm256_or_si256(rb, _mm256_shuffle_epi8(rows[h], _mm256_adds_epu8(b, top)));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i), ra);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i + 32), rb);
  }
  return i;
}

// 64 bytes at a time with AVX-512 VBMI: the table is four registers, vpermi2b looks each byte's
// low 7 bits up in both 128-byte halves, and its top bit picks the half.
__attribute__((target("avx512f,avx512bw,avx512vbmi"))) int64_t lookup_vbmi(const uint8_t* x,
                                                                           uint8_t* y, int64_t n,
                                                                           const uint8_t* table) {
  const __m512i t0 = _mm512_loadu_si512(table), t1 = _mm512_loadu_si512(table + 64);
  const __m512i t2 = _mm512_loadu_si512(table + 128), t3 = _mm512_loadu_si512(table + 192);
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    const __m512i v = _mm512_loadu_si512(x + i);
    const __m512i lo = _mm512_permutex2var_epi8(t0, v, t1);
    const __m512i hi = _mm512_permutex2var_epi8(t2, v, t3);
    _mm512_storeu_si512(y + i, _mm512_mask_blend_epi8(_mm512_movepi8_mask(v), lo, hi));
  }
  return i;
}

using LookupFn = int64_t (*)(const uint8_t*, uint8_t*, int64_t, const uint8_t*);

// The widest lookup this CPU has, capped by EDGEPACK_CPU_ISA (cpu_isa.h); nullptr: the loop.
LookupFn choose_lookup() {
  if (x86_has_avx512vbmi()) return lookup_vbmi;
  if (x86_isa() != X86Isa::kGeneric) return lookup_avx2;
  return nullptr;
}
#endif

// Clamping before rounding equals rounding before clamping (the bounds are integers), and keeps
// |v| < 2^22, where adding and subtracting 1.5 * 2^23 rounds half to even in the default
// rounding mode (no fast-math here). NaN becomes the lowest value. Division, not a multiply by
// 1 / scale: the bytes of onnxruntime and the reference evaluator. Every vector width gives
// the same bytes (EDGEPACK_VECTOR_CLONES).
template <class T>
EDGEPACK_INLINE_INTO_CLONES void quantize_loop(const float* x, T* y, int64_t n, float scale,
                                               float zero) {
  const float lo = static_cast<float>(std::numeric_limits<T>::lowest()) - zero;
  const float hi = static_cast<float>(std::numeric_limits<T>::max()) - zero;
  constexpr float kMagic = 12582912.0f;
  for (int64_t i = 0; i < n; ++i) {
    float v = x[i] / scale;
    v = v > lo ? v : lo;
    v = v < hi ? v : hi;
    v = (v + kMagic) - kMagic;
    y[i] = static_cast<T>(static_cast<int32_t>(v + zero));
  }
}

template <class T>
EDGEPACK_INLINE_INTO_CLONES void dequantize_loop(const T* x, float* y, int64_t n, float scale,
                                                 float zero) {
  for (int64_t i = 0; i < n; ++i) y[i] = (static_cast<float>(x[i]) - zero) * scale;
}

// The two products must be rounded before they are added: a fused multiply-add (the kernels
// build with -ffp-contract=fast; GCC's optimize("fp-contract=off") has no clang counterpart that
// -ffp-contract=fast honours) gives other bytes than the chain run op by op. So each product
// passes through an xor with `fence`, which is 0 but read from a volatile: the compiler cannot
// see through it and multiplies and adds separately, still vectorised (one vpxor per product).
EDGEPACK_INLINE_INTO_CLONES float fenced(float v, uint32_t fence) {
  uint32_t u;
  std::memcpy(&u, &v, sizeof u);
  u ^= fence;
  std::memcpy(&v, &u, sizeof v);
  return v;
}
volatile uint32_t g_zero_fence = 0;

// kernels::add_byte_pairs (quantize.h); scalars, not the struct: stores to y (bytes) could
// alias its fields and keep the loop from vectorising.
template <class A, class B>
EDGEPACK_INLINE_INTO_CLONES void add_pairs_loop(const A* a, const B* b, uint8_t* y, int64_t n,
                                                float sa, int32_t za, float sb, int32_t zb,
                                                float sy, float zy, float lo, float hi) {
  const uint32_t fence = g_zero_fence;
  constexpr float kMagic = 12582912.0f;
  for (int64_t i = 0; i < n; ++i) {
    const float va = static_cast<float>(static_cast<int32_t>(a[i]) - za) * sa;
    const float vb = static_cast<float>(static_cast<int32_t>(b[i]) - zb) * sb;
    float v = (fenced(va, fence) + fenced(vb, fence)) / sy;
    v = v > lo ? v : lo;
    v = v < hi ? v : hi;
    v = (v + kMagic) - kMagic;
    y[i] = static_cast<uint8_t>(static_cast<int32_t>(v + zy));
  }
}

#if defined(__x86_64__) || defined(__i386__)
// add_pairs_loop by AVX-512 intrinsics, 16 elements a step (~1.45x the AVX-512 clone, whose
// byte widening and rounding take twice the instructions): the same float32 operations one at a
// time, as _round_ builtins (which -ffp-contract=fast cannot fuse into a multiply-add), rounding
// half to even by the conversion's embedded rounding instead of +- 1.5 * 2^23 (the same integer
// for the clamped v), the zero point added as an integer (exact: v is integral) and the low byte
// stored (vpmovdb). The same bytes as add_pairs_loop for every input (tests/sdk/test_int8_pairs.py
// runs both); the tail by masked loads and stores.
template <class T>
__attribute__((target("avx512f,avx512bw,avx512vl"), always_inline)) inline __m512i widen(
    __m128i v) {
  if constexpr (std::is_same<T, uint8_t>::value) return _mm512_cvtepu8_epi32(v);
  return _mm512_cvtepi8_epi32(v);
}

constexpr int kNearest = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;

struct PairConsts {
  __m512 sa, sb, sy, lo, hi;
  __m512i za, zb, zy;
};

template <class A, class B>
__attribute__((target("avx512f,avx512bw,avx512vl"), always_inline)) inline __m128i pair_step(
    const PairConsts& c, __m128i a8, __m128i b8) {
  const __m512 va =
      _mm512_mul_round_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(widen<A>(a8), c.za)), c.sa, kNearest);
  const __m512 vb =
      _mm512_mul_round_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(widen<B>(b8), c.zb)), c.sb, kNearest);
  __m512 v = _mm512_div_round_ps(_mm512_add_round_ps(va, vb, kNearest), c.sy, kNearest);
  v = _mm512_min_ps(_mm512_max_ps(v, c.lo), c.hi);  // (v > lo ? v : lo) < hi ? .. : hi
  return _mm512_cvtepi32_epi8(_mm512_add_epi32(_mm512_cvt_roundps_epi32(v, kNearest), c.zy));
}

template <class A, class B>
__attribute__((target("avx512f,avx512bw,avx512vl"))) void add_pairs_avx512(const A* a, const B* b,
                                                                           uint8_t* y, int64_t n,
                                                                           const BytePairAdd& p) {
  PairConsts c;
  c.sa = _mm512_set1_ps(p.scale_a);
  c.sb = _mm512_set1_ps(p.scale_b);
  c.sy = _mm512_set1_ps(p.scale_y);
  c.lo = _mm512_set1_ps(p.lo);
  c.hi = _mm512_set1_ps(p.hi);
  c.za = _mm512_set1_epi32(p.zero_a);
  c.zb = _mm512_set1_epi32(p.zero_b);
  c.zy = _mm512_set1_epi32(static_cast<int32_t>(p.zero_y));
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m128i r = pair_step<A, B>(c, _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i)),
                                      _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), r);
  }
  if (i < n) {
    const auto m = static_cast<__mmask16>((1u << (n - i)) - 1);
    const __m128i r =
        pair_step<A, B>(c, _mm_maskz_loadu_epi8(m, a + i), _mm_maskz_loadu_epi8(m, b + i));
    _mm_mask_storeu_epi8(y + i, m, r);
  }
}
#endif

#define EDGEPACK_PAIR_LOOP(A, B)                                                             \
  EDGEPACK_VECTOR_CLONES void add_pairs_clone(const A* a, const B* b, uint8_t* y, int64_t n, \
                                              float sa, int32_t za, float sb, int32_t zb,    \
                                              float sy, float zy, float lo, float hi) {      \
    add_pairs_loop<A, B>(a, b, y, n, sa, za, sb, zb, sy, zy, lo, hi);                        \
  }
EDGEPACK_PAIR_LOOP(uint8_t, uint8_t)
EDGEPACK_PAIR_LOOP(uint8_t, int8_t)
EDGEPACK_PAIR_LOOP(int8_t, uint8_t)
EDGEPACK_PAIR_LOOP(int8_t, int8_t)
#undef EDGEPACK_PAIR_LOOP

// One clone set per element type (overloads: target_clones functions are not templates).
#define EDGEPACK_QUANT_LOOPS(T)                                                              \
  EDGEPACK_VECTOR_CLONES void quantize_clone(const float* x, T* y, int64_t n, float scale,   \
                                             float zero) {                                   \
    quantize_loop<T>(x, y, n, scale, zero);                                                  \
  }                                                                                          \
  EDGEPACK_VECTOR_CLONES void dequantize_clone(const T* x, float* y, int64_t n, float scale, \
                                               float zero) {                                 \
    dequantize_loop<T>(x, y, n, scale, zero);                                                \
  }
EDGEPACK_QUANT_LOOPS(uint8_t)
EDGEPACK_QUANT_LOOPS(int8_t)
EDGEPACK_QUANT_LOOPS(uint16_t)
EDGEPACK_QUANT_LOOPS(int16_t)
#undef EDGEPACK_QUANT_LOOPS
EDGEPACK_VECTOR_CLONES void dequantize_clone(const int32_t* x, float* y, int64_t n, float scale,
                                             float zero) {
  dequantize_loop<int32_t>(x, y, n, scale, zero);
}

}  // namespace

template <class T>
void quantize_linear(const float* x, T* y, int64_t n, float scale, float zero) {
  quantize_clone(x, y, n, scale, zero);
}

template <class T>
void dequantize_linear(const T* x, float* y, int64_t n, float scale, float zero) {
  dequantize_clone(x, y, n, scale, zero);
}

void lookup_bytes(const uint8_t* x, uint8_t* y, int64_t n, const uint8_t* table) {
  int64_t i = 0;
#if defined(__x86_64__) || defined(__i386__)
  static const LookupFn fn = choose_lookup();
  if (fn != nullptr) i = fn(x, y, n, table);
#endif
  lookup_scalar(x, y, n, table, i);
}

void lookup_byte_pairs(const uint8_t* x, const uint8_t* x2, uint8_t* y, int64_t n,
                       const uint8_t* table) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {  // four independent loads per step
    const uint8_t a = table[x[i] << 8 | x2[i]], b = table[x[i + 1] << 8 | x2[i + 1]],
                  c = table[x[i + 2] << 8 | x2[i + 2]], d = table[x[i + 3] << 8 | x2[i + 3]];
    y[i] = a;
    y[i + 1] = b;
    y[i + 2] = c;
    y[i + 3] = d;
  }
  for (; i < n; ++i) y[i] = table[x[i] << 8 | x2[i]];
}

template <class A, class B>
void add_byte_pairs(const A* a, const B* b, uint8_t* y, int64_t n, const BytePairAdd& p) {
#if defined(__x86_64__) || defined(__i386__)
  static const bool avx512 = x86_isa() >= X86Isa::kAvx512Vnni;  // F, BW and VL
  if (avx512) return add_pairs_avx512<A, B>(a, b, y, n, p);
#endif
  add_pairs_clone(a, b, y, n, p.scale_a, p.zero_a, p.scale_b, p.zero_b, p.scale_y, p.zero_y, p.lo,
                  p.hi);
}

template void add_byte_pairs<uint8_t, uint8_t>(const uint8_t*, const uint8_t*, uint8_t*, int64_t,
                                               const BytePairAdd&);
template void add_byte_pairs<uint8_t, int8_t>(const uint8_t*, const int8_t*, uint8_t*, int64_t,
                                              const BytePairAdd&);
template void add_byte_pairs<int8_t, uint8_t>(const int8_t*, const uint8_t*, uint8_t*, int64_t,
                                              const BytePairAdd&);
template void add_byte_pairs<int8_t, int8_t>(const int8_t*, const int8_t*, uint8_t*, int64_t,
                                             const BytePairAdd&);
template void quantize_linear<uint8_t>(const float*, uint8_t*, int64_t, float, float);
template void quantize_linear<int8_t>(const float*, int8_t*, int64_t, float, float);
template void quantize_linear<uint16_t>(const float*, uint16_t*, int64_t, float, float);
template void quantize_linear<int16_t>(const float*, int16_t*, int64_t, float, float);
template void dequantize_linear<uint8_t>(const uint8_t*, float*, int64_t, float, float);
template void dequantize_linear<int8_t>(const int8_t*, float*, int64_t, float, float);
template void dequantize_linear<uint16_t>(const uint16_t*, float*, int64_t, float, float);
template void dequantize_linear<int16_t>(const int16_t*, float*, int64_t, float, float);
template void dequantize_linear<int32_t>(const int32_t*, float*, int64_t, float, float);

}  // namespace kernels
}  // namespace edgepack

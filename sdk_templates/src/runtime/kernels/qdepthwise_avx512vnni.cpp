// SPDX-License-Identifier: Apache-2.0
// qdepthwise_plane() compiled with the AVX-512 VNNI flags (chosen at run time by qdepthwise.cpp
// when the CPU has avx512f/bw/vl/vnni, as the int8 GEMM's kernel).
//
// Kernels at most 4 columns wide (3x3: MobileNetV2's), stride_w 1 or 2, run on the uint8 bytes
// with vpdpbusd: one kernel row is one quad of weights (w0, w1, w2, 0), and the quad of input
// bytes of output j is the dword at byte stride_w * j of the row (QuadLayout, qdepthwise_impl.h):
// a plain 64-byte load at byte offset p (stride 1: p = 0..3) holds the quads of outputs
// p, p + 4, ..., p + 60, so four loads per kernel row give 64 outputs in four accumulators
// (stride 2: offsets 0 and 2 give 32 outputs, 64 and 66 the next 32), no int16 copy, no
// unpacking, no phase split. The zero point goes into the bias (sum w * (x - za) = sum w * x -
// za * sum w; u8 x s8 products summed in int32 without saturation, so full-range weights are
// exact). The 16 sums of an accumulator are requantised at once (two vpmuldq, the rounding and
// the output zero point in one 64-bit constant; the sign correction of rounding half away from
// zero only where the plane's sums can reach a tie), the four accumulators packed to bytes with
// saturation (the clamp to 0..255) and put back in output order by one byte shuffle (stride 2:
// and one qword permute), then written with masked stores, one per output row in the 64 outputs.
// The padded plane is one uint8 copy in whole-vector stores. Everything else (wider kernels,
// M >= 1, sums that could leave int32) runs the int16 plane path of qdepthwise_impl.h with
// vpdpwssd. MobileNetV2 int8's 17 depthwise nodes on Zen 4, 1 thread: 2.34 -> 0.88 ms.

// GCC 12.2's AVX-512 intrinsics start unmasked operations from _mm512_undefined_epi32() (`__Y =
// __Y`) and -Wmaybe-uninitialized reports that once inlined (GCC bug 105593, fixed in 12.3).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <cstdlib>

#include "runtime/kernels/qdepthwise_impl.h"

namespace edgepack {
namespace kernels {
namespace {

constexpr int kMaxQuadRows = 16;  // kernel_h of the quad path

inline uint64_t ones(int64_t n) {
  return n <= 0 ? 0 : (n >= 64 ? ~uint64_t(0) : (uint64_t(1) << n) - 1);
}

struct Requant {
  __m512i m0, round;  // m0 per qword; 2^(total - 1) + zo * 2^total
  __m128i total;
};

// zo + round_half_away(x * m0 / 2^total) per int32 lane, as apply_multiplier() (the caller
// keeps it inside int32; the packs that follow clamp it to 0..255): for p = x * m0, round half
// away from zero is floor((p + 2^(total-1) - [p < 0]) / 2^total), and zo * 2^total added before
// the shift adds zo after it. Without kTies the caller has shown that p is never an odd multiple
// of 2^(total-1) (|x| < 2^(total-1-v), m0 = odd * 2^v), so the [p < 0] term never matters.
template <bool kTies>
inline __m512i requant16(__m512i x, const Requant& q) {
  __m512i even = _mm512_mul_epi32(x, q.m0);
  __m512i odd = _mm512_mul_epi32(_mm512_srli_epi64(x, 32), q.m0);
  if (kTies) {
    even = _mm512_add_epi64(even, _mm512_srai_epi64(even, 63));
    odd = _mm512_add_epi64(odd, _mm512_srai_epi64(odd, 63));
  }
  even = _mm512_sra_epi64(_mm512_add_epi64(even, q.round), q.total);
  odd = _mm512_sra_epi64(_mm512_add_epi64(odd, q.round), q.total);
  // the low dword of each odd qword into the odd lanes
  return _mm512_mask_shuffle_epi32(even, 0xaaaa, odd, _MM_PERM_CCAA);
}

inline __m512i load64(const uint8_t* p) {
  return _mm512_loadu_si512(p);
}

// All flat outputs of a plane, 64 at a time. base[ky]: the first byte of kernel row ky's taps
// for output 0; n: flat outputs (out_h * q); q: flat outputs per output row.
template <int SW, int KH, bool kTies>
void quad_plane(const uint8_t* const* base, const __m512i* wv, int kh, __m512i bias, int64_t n,
                int64_t q, int64_t out_w, int64_t out_h, const Requant& rq, uint8_t* out) {
  const int nky = KH > 0 ? KH : kh;
  // After the packs, 128-bit lane L holds bytes r0[4L..4L+3], r1[..], r2[..], r3[..]. Stride 1
  // (r_p[i] = output 4i + p): a 4x4 byte transpose puts outputs 16L..16L+15 in order. Stride 2
  // (r0, r1: outputs 2i and 2i + 1, r2, r3: 32 + 2i and 33 + 2i): outputs 8L..8L+7 into the
  // lane's low qword, 32 + 8L.. into its high one, then the qwords in order.
  // (bytes 0, 4, 8, 12, 1, 5, 9, 13, ... and 0, 4, 1, 5, 2, 6, 3, 7, 8, 12, ... per lane)
  const __m512i order = SW == 1 ? _mm512_set4_epi32(0x0f0b0703, 0x0e0a0602, 0x0d090501, 0x0c080400)
                                : _mm512_set4_epi32(0x0f0b0e0a, 0x0d090c08, 0x07030602, 0x05010400);
  const __m512i qwords2 = _mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7);
  int64_t oy0 = 0, row_end = q;  // the first output row that ends inside the block, its end
  for (int64_t j0 = 0; j0 < n; j0 += 64) {
    __m512i a0 = bias, a1 = bias, a2 = bias, a3 = bias;
    for (int ky = 0; ky < nky; ++ky) {
      const uint8_t* b = base[ky] + SW * j0;
      const __m512i w = wv[ky];
      if (SW == 1) {
        a0 = _mm512_dpbusd_epi32(a0, load64(b), w);
        a1 = _mm512_dpbusd_epi32(a1, load64(b + 1), w);
        a2 = _mm512_dpbusd_epi32(a2, load64(b + 2), w);
        a3 = _mm512_dpbusd_epi32(a3, load64(b + 3), w);
      } else {
        a0 = _mm512_dpbusd_epi32(a0, load64(b), w);
        a1 = _mm512_dpbusd_epi32(a1, load64(b + 2), w);
        a2 = _mm512_dpbusd_epi32(a2, load64(b + 64), w);
        a3 = _mm512_dpbusd_epi32(a3, load64(b + 66), w);
      }
    }
    // int32 -> int16 -> uint8 with saturation: the clamp to 0..255
    const __m512i lo16 = _mm512_packs_epi32(requant16<kTies>(a0, rq), requant16<kTies>(a1, rq));
    const __m512i hi16 = _mm512_packs_epi32(requant16<kTies>(a2, rq), requant16<kTies>(a3, rq));
    __m512i v = _mm512_shuffle_epi8(_mm512_packus_epi16(lo16, hi16), order);
    if (SW == 2) v = _mm512_permutexvar_epi64(qwords2, v);
    // Output row oy holds flat outputs [oy * q, oy * q + out_w): one masked store per row,
    // at the address where lane j - j0 lands on its output.
    while (row_end <= j0) {
      ++oy0;
      row_end += q;
    }
    int64_t lo = row_end - q - j0;  // lane of row oy0's first output (may be < 0)
    for (int64_t oy = oy0; oy < out_h && lo < 64; ++oy, lo += q) {
      const int64_t a = std::max<int64_t>(lo, 0), b = std::min<int64_t>(lo + out_w, 64);
      if (b > a)  // lanes [a, b): 0 <= a < b <= 64
        _mm512_mask_storeu_epi8(out + j0 - oy * (q - out_w),
                                (~uint64_t(0) >> (64 - b)) & (~uint64_t(0) << a), v);
    }
  }
}

constexpr int64_t kMaxQuadChunks = 32;  // 64-byte chunks per padded row (pitch <= 2048)

// Byte vectors of W = 16, 32 or 64 bytes for copy_planes.
template <int W>
struct Bytes;
template <>
struct Bytes<16> {
  using V = __m128i;
  static V set1(uint8_t b) { return _mm_set1_epi8(static_cast<char>(b)); }
  static V load(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const V*>(p)); }
  static V blend(uint64_t m, V a, V b) { return _mm_mask_blend_epi8(__mmask16(m), a, b); }
  static V load_masked(V a, uint64_t m, const uint8_t* p) {
    return _mm_mask_loadu_epi8(a, __mmask16(m), p);
  }
  static void store(uint8_t* p, V v) { _mm_storeu_si128(reinterpret_cast<V*>(p), v); }
};
template <>
struct Bytes<32> {
  using V = __m256i;
  static V set1(uint8_t b) { return _mm256_set1_epi8(static_cast<char>(b)); }
  static V load(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const V*>(p)); }
  static V blend(uint64_t m, V a, V b) { return _mm256_mask_blend_epi8(__mmask32(m), a, b); }
  static V load_masked(V a, uint64_t m, const uint8_t* p) {
    return _mm256_mask_loadu_epi8(a, __mmask32(m), p);
  }
  static void store(uint8_t* p, V v) { _mm256_storeu_si256(reinterpret_cast<V*>(p), v); }
};
template <>
struct Bytes<64> {
  using V = __m512i;
  static V set1(uint8_t b) { return _mm512_set1_epi8(static_cast<char>(b)); }
  static V load(const uint8_t* p) { return _mm512_loadu_si512(p); }
  static V blend(uint64_t m, V a, V b) { return _mm512_mask_blend_epi8(m, a, b); }
  static V load_masked(V a, uint64_t m, const uint8_t* p) {
    return _mm512_mask_loadu_epi8(a, m, p);
  }
  static void store(uint8_t* p, V v) { _mm512_storeu_si512(p, v); }
};

// The padded plane (za in the padding) in the QuadLayout, plane by plane and row by row, in
// whole W-byte stores (W = 16 or 32 for narrow planes): a row's last store runs into the rows
// after it, which are written later (the last plane's into the slack). Rows whose chunks lie
// inside the input are loaded whole and blended with za; masked loads only at the plane's end
// (a masked load per row cost ~40% of the layer at 14x14 and 7x7).
template <int W>
void copy_planes(const QDepthwiseParams& p, const QuadLayout& l, const uint8_t* in, uint8_t za,
                 uint8_t* planes) {
  using B = Bytes<W>;
  // (locals: the byte stores could alias p's fields, which would be read again after each)
  const int64_t in_h = p.in_h, in_w = p.in_w, pad_top = p.pad_top, pad_left = p.pad_left;
  const int64_t sh = p.stride_h, hp = l.hp, pitch = l.pitch;
  const typename B::V vza = B::set1(za);
  const int64_t chunks = (pitch + W - 1) / W, plane_bytes = l.rows * pitch;
  const int64_t total = in_h * in_w;
  uint64_t mask[kMaxQuadChunks];  // the chunk's lanes that hold input columns
  for (int64_t i = 0; i < chunks; ++i)
    mask[i] = ones(std::min<int64_t>(pad_left + in_w - W * i, W)) & ~ones(pad_left - W * i);
  for (int64_t ph = 0; ph < sh; ++ph) {
    uint8_t* d = planes + ph * plane_bytes;
    for (int64_t r = ph; r < hp; r += sh, d += pitch) {
      const int64_t iy = r - pad_top;
      if (iy < 0 || iy >= in_h) {
        for (int64_t i = 0; i < chunks; ++i) B::store(d + W * i, vza);
        continue;
      }
      const int64_t at = iy * in_w - pad_left;  // input index of padded column 0
      if (at >= 0 && at + W * chunks <= total) {
        for (int64_t i = 0; i < chunks; ++i)
          B::store(d + W * i, B::blend(mask[i], vza, B::load(in + at + W * i)));
      } else {
        for (int64_t i = 0; i < chunks; ++i)
          B::store(d + W * i, B::load_masked(vza, mask[i], in + at + W * i));
      }
    }
  }
  std::memset(planes + p.stride_h * plane_bytes, za, kQuadSlack);
}

// The quad path, when it applies (else false).
bool quad_depthwise(const QDepthwiseParams& p, const uint8_t* in, uint8_t za, const int8_t* w,
                    int32_t bias, QuantMultiplier mult, uint8_t zo, uint8_t* out, void* scratch) {
  const int64_t span = (p.kernel_w - 1) * p.dilation_w + 1;
  if (span > 4 || p.kernel_h > kMaxQuadRows || (p.stride_w != 1 && p.stride_w != 2) ||
      p.stride_h < 1 || mult.shift > 0 || mult.shift < -23 || p.out_h <= 0 || p.out_w <= 0)
    return false;
  const QuadLayout l = quad_layout(p);
  if (l.pitch > 64 * kMaxQuadChunks) return false;
  // bias' = bias - za * sum w; every partial sum within |bias'| + 255 * sum |w| < 2^31 - 512,
  // so nothing wraps and zo plus the requantised value (M < 1) stays inside int32.
  // (the taps, at most 64, in one vector: sums of bytes by vpsadbw; scalar loops over 9 taps
  // were ~1/3 of a 7x7 plane)
  const int ntaps = static_cast<int>(p.kernel_h * p.kernel_w);
  const __m512i taps = _mm512_maskz_loadu_epi8(ones(ntaps), w);
  const __m512i zero = _mm512_setzero_si512();
  // sum (w + 128) over all 64 lanes, the empty ones included, less 64 * 128
  const int64_t sum =
      _mm512_reduce_add_epi64(_mm512_sad_epu8(
          _mm512_xor_si512(taps, _mm512_set1_epi8(static_cast<char>(0x80))), zero)) -
      64 * 128;
  const int64_t sum_abs = _mm512_reduce_add_epi64(_mm512_sad_epu8(_mm512_abs_epi8(taps), zero));
  const int64_t bias2 = int64_t(bias) - int64_t(za) * sum;
  const int64_t bound = std::abs(bias2) + 255 * sum_abs;
  if (bound >= (int64_t(1) << 31) - 512) return false;

  auto* planes = static_cast<uint8_t*>(scratch);
  if (l.pitch <= 16)
    copy_planes<16>(p, l, in, za, planes);
  else if (l.pitch <= 32)
    copy_planes<32>(p, l, in, za, planes);
  else
    copy_planes<64>(p, l, in, za, planes);

  const uint8_t* base[kMaxQuadRows];
  __m512i wv[kMaxQuadRows];
  // 3-column kernels of up to 4 rows: the quads by one byte shuffle of the taps
  const bool three = p.kernel_w == 3 && p.dilation_w == 1 && p.kernel_h <= 4;
  const __m512i quads = _mm512_castsi128_si512(
      _mm_shuffle_epi8(_mm512_castsi512_si128(taps),
                       _mm_setr_epi8(0, 1, 2, -1, 3, 4, 5, -1, 6, 7, 8, -1, 9, 10, 11, -1)));
  for (int64_t ky = 0; ky < p.kernel_h; ++ky) {
    const int64_t row = ky * p.dilation_h;
    const int64_t at = div_stride(row, p.stride_h);
    base[ky] = planes + (row - at * p.stride_h) * l.rows * l.pitch + at * l.pitch;
    if (three) {
      wv[ky] = _mm512_permutexvar_epi32(_mm512_set1_epi32(static_cast<int>(ky)), quads);
      continue;
    }
    uint32_t quad = 0;
    for (int64_t kx = 0; kx < p.kernel_w; ++kx)
      quad |= uint32_t(uint8_t(w[ky * p.kernel_w + kx])) << (8 * kx * p.dilation_w);
    wv[ky] = _mm512_set1_epi32(static_cast<int32_t>(quad));
  }
  const int total = 31 - mult.shift;  // 31..54
  Requant rq;
  rq.m0 = _mm512_set1_epi64(mult.m0);
  rq.round = _mm512_set1_epi64((int64_t(1) << (total - 1)) + (int64_t(zo) << total));
  rq.total = _mm_cvtsi32_si128(total);
  const __m512i vbias = _mm512_set1_epi32(static_cast<int32_t>(bias2));
  const int64_t q = div_stride(l.pitch, p.stride_w), n = p.out_h * q;
  const int kh = static_cast<int>(p.kernel_h);
  // Ties (an odd multiple of 2^(total-1) as x * m0) need |x| >= 2^(total-1-v), m0 = odd * 2^v.
  const int v = mult.m0 == 0 ? 0 : __builtin_ctz(static_cast<uint32_t>(mult.m0));
  const bool ties = total - 1 - v < 32 && bound >= (int64_t(1) << (total - 1 - v));
  using Fn = void (*)(const uint8_t* const*, const __m512i*, int, __m512i, int64_t, int64_t,
                      int64_t, int64_t, const Requant&, uint8_t*);
  static const Fn fns[2][2][2] = {{{quad_plane<1, 0, false>, quad_plane<1, 0, true>},
                                   {quad_plane<1, 3, false>, quad_plane<1, 3, true>}},
                                  {{quad_plane<2, 0, false>, quad_plane<2, 0, true>},
                                   {quad_plane<2, 3, false>, quad_plane<2, 3, true>}}};
  fns[p.stride_w - 1][kh == 3][ties](base, wv, kh, vbias, n, q, p.out_w, p.out_h, rq, out);
  return true;
}

}  // namespace

void qdepthwise_plane_avx512vnni(const QDepthwiseParams& p, const uint8_t* in, uint8_t za,
                                 const int8_t* w, int32_t bias, QuantMultiplier mult, uint8_t zo,
                                 uint8_t* out, void* scratch) {
  if (quad_depthwise(p, in, za, w, bias, mult, zo, out, scratch)) return;
  qdepthwise_plane_impl(p, in, za, w, bias, mult, zo, out, scratch);
}

}  // namespace kernels
}  // namespace edgepack

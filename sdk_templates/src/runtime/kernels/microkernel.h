// SPDX-License-Identifier: Apache-2.0
// The GEMM micro-kernel, written once as a template and compiled once per instruction set
// (microkernel_<isa>.cpp, each with its own -m flags); gemm.cpp picks one at run time.
//
// The loops have fixed trip counts so the compiler keeps the MR x NR accumulator tile in vector
// registers, vectorised along NR (B panel rows are contiguous, A values are broadcast).
#pragma once

#include <cstdint>
#include <cstring>

#include "exp_cephes.h"

#if defined(__SSE__)
#include <immintrin.h>
#endif

namespace edgepack {
namespace kernels {

// What the micro-kernel applies to a finished tile while it is still in registers (the last K
// block only): + bias (per row: row_bias[0..MR), or per column: col_bias[0..NR)), then a clamp to
// [lo, hi] (ReLU is [0, inf), ReLU6 / Clip [lo, hi]; no activation: clamp = 0), then `act`.
// Applying the activation here, not in a second pass over C, matters most when K is small (1x1
// convolutions with few input channels): the tile is written once, and the activation runs on
// full vectors of the kernel's own ISA.
struct TileEpilogue {
  enum Act : int { kNone = 0, kHardSwish = 1, kHardSigmoid = 2, kSilu = 3, kGelu = 4 };
  const float* row_bias = nullptr;
  const float* col_bias = nullptr;
  int clamp = 0;
  float lo = 0.0f, hi = 0.0f;
  int act = kNone;
  float alpha = 0.0f, beta = 0.0f;  // kHardSigmoid: clamp(alpha * x + beta, 0, 1)
};

// Computes the MR x NR tile acc = sum_p A[p][0..MR) (x) B[p][0..NR) over kc steps: A from a packed
// panel (MicroKernel::fn; lda unused), or read in place with row i at a + i * lda (fn_rows; MR
// full rows must exist: for products whose B is narrow, attention weights times V, where packing A
// would copy as many floats as the tiles read); B row p at b + p * ldb (ldb == NR for a packed
// panel, the row stride of B when the kernel reads an unpacked B in place). Then c = alpha * acc
// (accumulate == 0) or c += alpha * acc (row stride ldc), then the epilogue when ep != nullptr.
using MicroKernelFn = void (*)(int64_t kc, const float* a, int64_t lda, const float* b, int64_t ldb,
                               float* c, int64_t ldc, float alpha, int accumulate,
                               const TileEpilogue* ep);

// One block of a channel-blocked depthwise convolution (dw_cblock_tmpl): L = dw_lanes channels,
// interleaved so that one vector holds one pixel of every channel of the block.
struct DwBlock {
  int64_t out_h, out_w;  // output pixels
  int64_t in_w;          // pixels per row of the padded, interleaved input
  int64_t kernel_h, kernel_w, stride_h, stride_w, dilation_h, dilation_w;
  int64_t out_plane;  // floats between two channels' planes of the NCHW output
  int channels;       // channels of this block (<= L: the last block may be partial)
};

// A direct convolution with output channels in vectors (conv_oc_row_tmpl), for layers with few
// input channels (stems: 3 -> 16 / 32, 3x3 stride 2), where im2col + GEMM has a K of 27.
struct OcConv {
  const float* in;         // zero-padded input planes
  int64_t in_plane, in_w;  // floats per padded plane, per padded row
  int64_t kernel_h, kernel_w, stride_h, stride_w, dilation_h, dilation_w;
  int64_t out_w;
  int taps;           // input channels x kernel_h x kernel_w (at most kMaxOcConvTaps)
  const float* w;     // per block of L output channels: taps x L weights (ci, kh, kw order)
  const float* bias;  // per block: L floats
};

// The largest micro-kernel MR of any instruction set.
constexpr int kMaxMR = 8;

struct MicroKernel {
  int mr;
  int nr;
  int kc;  // K block: a KC x NR slice of B stays in L1 while A panels stream
  const char* isa;
  MicroKernelFn fn;
  // Depthwise 3x3 row kernel compiled with the same flags (see dw3x3_row_tmpl), clamping each
  // value to [lo, hi] (pass -inf, inf for none).
  void (*dw3x3_row)(const float* r0, const float* r1, const float* r2, const float* w9, float bias,
                    float lo, float hi, float* out, int64_t count, int64_t stride);
  // Depthwise row kernel for any kernel size, stride and dilation (see dw_taps_row_tmpl).
  void (*dw_taps_row)(const float* const* taps, const float* w, int ntaps, float bias, float lo,
                      float hi, float* out, int64_t count);
  // y = act(x) over a contiguous run; y may be x (see act_row_tmpl).
  void (*act_row)(const TileEpilogue& ep, const float* x, float* y, int64_t n);
  // Depthwise convolution of one block of dw_lanes channels held channel-interleaved (see
  // dw_cblock_tmpl); dw_lanes is the vector width in floats.
  int dw_lanes;
  void (*dw_cblock)(const float* in, const float* w, const float* bias, const DwBlock& g,
                    const TileEpilogue& ep, float* work, float* out);
  // Copies up to dw_lanes NCHW planes into that interleaved, padded layout (see dw_pack_tmpl).
  void (*dw_pack)(const float* src, int64_t src_plane, int channels, int64_t h, int64_t w,
                  int64_t pad_top, int64_t pad_left, int64_t padded_w, float* dst);
  // One output row of an OcConv for blocks [blk, blk + nblk) (nblk 1 or 2), interleaved into
  // work (see conv_oc_row_tmpl).
  void (*conv_oc_row)(const OcConv& g, int64_t oh, int64_t blk, int nblk, const TileEpilogue& ep,
                      float* work);
  // Interleaved pixel vectors back to NCHW planes (see dw_unpack_tmpl).
  void (*unpack)(const float* src, int64_t n, int channels, float* dst, int64_t dst_plane);
  MicroKernelFn fn_rows;  // fn with A read in place (see MicroKernelFn)
  // y[0, n) = softmax(x[0, n)) (softmax_row_tmpl).
  void (*softmax_row)(const float* x, float* y, int64_t n);
  // y[i] (+)= w0 * r0[i] + w1 * r1[i] over two rows of frame bytes (blend_rows_u8_tmpl).
  void (*blend_rows_u8)(const uint8_t* r0, const uint8_t* r1, float w0, float w1, float* y,
                        int64_t n, bool accumulate);
  // fn_short[r]: fn for the first r rows (0 < r < mr) of a packed A panel, for the last rows of
  // a product whose M is not a multiple of mr (entries from mr on are null).
  MicroKernelFn fn_short[kMaxMR];
  // fn for the first nr / 2 columns of a packed B panel (all mr rows of a packed A panel), for
  // a last panel of at most nr / 2 columns (14x14 planes: 196 = 6 x 32 + 4 columns).
  MicroKernelFn fn_half;
  // K block for a block of C one panel wide (0: kc), when K is at most this: B is then that one
  // panel, and splitting K broke the stream of packed A (panel by panel, kc of every k values)
  // for nothing. Winograd's products of 16 tiles (AVX-512, 1 thread: 3x3 512 -> 512 at 7x7,
  // K = 512, 2.88 -> 1.71 ms; 256 -> 256 at 14x14, K = 256, 1.80 -> 1.13).
  int kc_one_panel;
};

const MicroKernel* microkernel_generic();
// The kernel set gemm() uses on this CPU (the best it supports, capped by EDGEPACK_CPU_ISA).
const MicroKernel& selected_microkernel();
#if defined(__x86_64__) || defined(__i386__)
const MicroKernel* microkernel_avx2();
const MicroKernel* microkernel_avx512();
#endif

// The templates below live in an anonymous namespace on purpose: every microkernel_<isa>.cpp is
// compiled with different -m flags, and a shared (inline/ODR) definition could let the linker
// pick an AVX-512 copy for a caller that runs on a CPU without it.
namespace {

// VB is the vector width in bytes; NR must be a multiple of VB / 4. GCC/Clang vector extensions
// keep this one source portable (SSE, AVX, AVX-512, NEON) while pinning the register layout the
// auto-vectoriser would otherwise have to guess.
// The TileEpilogue activations on vectors of VB bytes, for the micro-kernel's tile and for
// act_row_tmpl(). A class template: GCC vector types do not deduce as template arguments.
template <int VB>
struct VecAct {
  typedef float V __attribute__((vector_size(VB), aligned(4), may_alias));
  typedef int32_t VI __attribute__((vector_size(VB), aligned(4), may_alias));

  // a > b ? a : b and a < b ? a : b (b when either is NaN): x86's maxps / minps, one instruction
  // where GCC makes the select a compare and a blend (SiLU 15% faster on AVX2, 15% on AVX-512).
  // Elsewhere the select itself (NEON keeps the select's NaN behaviour).
  static V max(V a, V b) {
#if defined(__AVX512F__)
    // The masked form with every lane set: _mm512_max_ps starts from _mm512_undefined_ps(),
    // which GCC 12 reports as used uninitialised (-Werror) once inlined here. Same vmaxps.
    if constexpr (VB == 64)
      return reinterpret_cast<V>(_mm512_mask_max_ps(__m512(a), 0xFFFF, __m512(a), __m512(b)));
#endif
#if defined(__AVX__)
    if constexpr (VB == 32) return reinterpret_cast<V>(_mm256_max_ps(__m256(a), __m256(b)));
#endif
#if defined(__SSE__)
    if constexpr (VB == 16) return reinterpret_cast<V>(_mm_max_ps(__m128(a), __m128(b)));
#endif
    return a > b ? a : b;
  }
  static V min(V a, V b) {
#if defined(__AVX512F__)
    if constexpr (VB == 64)
      return reinterpret_cast<V>(_mm512_mask_min_ps(__m512(a), 0xFFFF, __m512(a), __m512(b)));
#endif
#if defined(__AVX__)
    if constexpr (VB == 32) return reinterpret_cast<V>(_mm256_min_ps(__m256(a), __m256(b)));
#endif
#if defined(__SSE__)
    if constexpr (VB == 16) return reinterpret_cast<V>(_mm_min_ps(__m128(a), __m128(b)));
#endif
    return a < b ? a : b;
  }

  // The first n lanes (0 <= n < VB / 4) of a vector at p, the others `fill`; v's first n lanes
  // stored at p; v with lanes from n on set to 0. Tails of rows: AVX-512 masks them, AVX2 uses
  // vmaskmovps; elsewhere a memcpy of n floats (a libc call per tail: ViT's 197-wide softmax rows
  // spent a third of their time in them).
  static V load_part(const float* p, int64_t n, float fill) {
#if defined(__AVX512F__)
    if constexpr (VB == 64)
      return reinterpret_cast<V>(_mm512_mask_loadu_ps(_mm512_set1_ps(fill), lanes_below(n), p));
#endif
#if defined(__AVX2__)
    if constexpr (VB == 32) {
      const __m256i m = lane_mask(n);
      return reinterpret_cast<V>(
          _mm256_blendv_ps(_mm256_set1_ps(fill), _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m)));
    }
#endif
    V v = V{} + fill;
    std::memcpy(&v, p, static_cast<size_t>(n) * sizeof(float));
    return v;
  }
  static void store_part(float* p, V v, int64_t n) {
#if defined(__AVX512F__)
    if constexpr (VB == 64) return _mm512_mask_storeu_ps(p, lanes_below(n), __m512(v));
#endif
#if defined(__AVX2__)
    if constexpr (VB == 32) return _mm256_maskstore_ps(p, lane_mask(n), __m256(v));
#endif
    std::memcpy(p, &v, static_cast<size_t>(n) * sizeof(float));
  }
  static V keep_part(V v, int64_t n) {
#if defined(__AVX512F__)
    if constexpr (VB == 64)
      return reinterpret_cast<V>(_mm512_maskz_mov_ps(lanes_below(n), __m512(v)));
#endif
#if defined(__AVX2__)
    if constexpr (VB == 32)
      return reinterpret_cast<V>(_mm256_and_ps(__m256(v), _mm256_castsi256_ps(lane_mask(n))));
#endif
    V kept = V{};
    std::memcpy(&kept, &v, static_cast<size_t>(n) * sizeof(float));
    return kept;
  }
#if defined(__AVX512F__)
  static __mmask16 lanes_below(int64_t n) {
    return static_cast<__mmask16>((1u << n) - 1u);
  }
#endif
#if defined(__AVX2__)
  static __m256i lane_mask(int64_t n) {  // all ones in lanes [0, n)
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
#endif

  // exp_approx() of activation.h (same steps and exp_cephes.h constants, so the same values up
  // to FMA contraction).
  static V exp(V x) {
    using namespace exp_cephes;
    const V lo = V{} + kMin, hi = V{} + kMax;
    x = max(x, lo);
    x = min(x, hi);
    const V magic = V{} + kMagic;
    const V t = x * kLog2e + magic;
    const V n = t - magic;
    const V r = x - n * kLn2Hi + n * kLn2Lo;
    V p = V{} + kE5;
    p = p * r + kE4;
    p = p * r + kE3;
    p = p * r + kE2;
    p = p * r + kE1;
    p = p * r + kE0;
    // 2^n: t = n + 1.5 * 2^23 holds n in its low mantissa bits (|n| < 2^22), so its bits less
    // those of the magic number are n (no float-to-int vector conversion needed).
    VI bits;
    std::memcpy(&bits, &t, sizeof bits);
    bits = (bits - 0x4B400000 + 127) << 23;
    V scale;
    std::memcpy(&scale, &bits, sizeof scale);
    return p * scale;
  }

  // GELU, x Phi(x): Phi(x) = erfc(-x / sqrt 2) / 2, with erfc(a) = t P(t) e^(-a^2), t = 1 / (1 +
  // p a), for a = |x| / sqrt 2 (Abramowitz and Stegun 7.1.26, absolute error below 1.5e-7: the
  // constants of vector_math.cpp's erf_approx). Phi is erfc(a) / 2 for x < 0 and 1 - erfc(a) / 2
  // otherwise, so negative inputs lose nothing to cancellation.
  static V gelu(V x) {
    const V one = V{} + 1.0f;
    const V v = x * 0.70710678118654752f;
    const V a = max(v, -v);
    const V t = one / (one + 0.3275911f * a);
    V p = V{} + 1.061405429f;
    p = p * t - 1.453152027f;
    p = p * t + 1.421413741f;
    p = p * t - 0.284496736f;
    p = p * t + 0.254829592f;
    const V half_erfc = 0.5f * (p * t) * exp(-(a * a));
    const V phi = x < V{} ? half_erfc : one - half_erfc;
    return x * phi;
  }

  static V hard_swish(V r) {
    V g = r * (1.0f / 6.0f) + 0.5f;
    g = max(V{}, g);
    g = min(V{} + 1.0f, g);
    return r * g;
  }
  static V hard_sigmoid(V r, float alpha, float beta) {
    V g = alpha * r + beta;
    g = max(V{}, g);
    return min(V{} + 1.0f, g);
  }
  static V silu(V r) {
    return r / (1.0f + exp(-r));
  }

  // HardSwish / HardSigmoid / SiLU / GELU of `ep` (after its bias and clamp).
  static V act(const TileEpilogue& ep, V r) {
    switch (ep.act) {
      case TileEpilogue::kHardSwish:
        return hard_swish(r);
      case TileEpilogue::kHardSigmoid:
        return hard_sigmoid(r, ep.alpha, ep.beta);
      case TileEpilogue::kSilu:
        return silu(r);
      case TileEpilogue::kGelu:
        return gelu(r);
      default:
        return r;
    }
  }
};

// x[0, n) = act(x) for the activation of `ep` (its bias and clamp are not applied): the second
// pass of kernels that cannot apply it while the values are in registers (depthwise rows, edge
// tiles), vectorised with the micro-kernel's ISA.
template <int VB>
void act_row_tmpl(const TileEpilogue& ep, const float* x, float* y, int64_t n) {
  typedef typename VecAct<VB>::V V;
  constexpr int kL = VB / 4;
  int64_t i = 0;
  for (; i + kL <= n; i += kL)
    *reinterpret_cast<V*>(y + i) = VecAct<VB>::act(ep, *reinterpret_cast<const V*>(x + i));
  if (i < n)
    VecAct<VB>::store_part(y + i, VecAct<VB>::act(ep, VecAct<VB>::load_part(x + i, n - i, 0.0f)),
                           n - i);
}

// y[0, n) = softmax(x[0, n)): the maximum (two vector accumulators), then e^(x - max) stored
// and summed in one pass, then the scale. The tail runs as one partial vector (its missing lanes
// are -inf for the maximum and are left out of the sum), so every value goes through the same
// exp. With GCC's auto-vectorised exp_approx() this took 0.92 ns per value on an AVX2 core, 0.61
// this way (exp's clamps as max/min, 2^n from t's bits instead of a float-to-int conversion).
template <int VB>
void softmax_row_tmpl(const float* __restrict x, float* __restrict y, int64_t n) {
  typedef typename VecAct<VB>::V V;
  constexpr int kL = VB / 4;
  const auto load_tail = [&](int64_t i, float fill) {
    return VecAct<VB>::load_part(x + i, n - i, fill);
  };
  V m0 = V{} - __builtin_inff(), m1 = m0;
  int64_t i = 0;
  for (; i + 2 * kL <= n; i += 2 * kL) {
    m0 = VecAct<VB>::max(m0, *reinterpret_cast<const V*>(x + i));
    m1 = VecAct<VB>::max(m1, *reinterpret_cast<const V*>(x + i + kL));
  }
  for (; i + kL <= n; i += kL) m0 = VecAct<VB>::max(m0, *reinterpret_cast<const V*>(x + i));
  if (i < n) m1 = VecAct<VB>::max(m1, load_tail(i, -__builtin_inff()));
  m0 = VecAct<VB>::max(m0, m1);
  float m = m0[0];
  for (int j = 1; j < kL; ++j) m = m0[j] > m ? m0[j] : m;
  const V vm = V{} + m;
  V s0 = V{}, s1 = V{};
  i = 0;
  for (; i + 2 * kL <= n; i += 2 * kL) {
    const V e0 = VecAct<VB>::exp(*reinterpret_cast<const V*>(x + i) - vm);
    const V e1 = VecAct<VB>::exp(*reinterpret_cast<const V*>(x + i + kL) - vm);
    *reinterpret_cast<V*>(y + i) = e0;
    *reinterpret_cast<V*>(y + i + kL) = e1;
    s0 += e0;
    s1 += e1;
  }
  for (; i + kL <= n; i += kL) {
    const V e = VecAct<VB>::exp(*reinterpret_cast<const V*>(x + i) - vm);
    *reinterpret_cast<V*>(y + i) = e;
    s0 += e;
  }
  if (i < n) {
    const V e = VecAct<VB>::exp(load_tail(i, m) - vm);
    VecAct<VB>::store_part(y + i, e, n - i);
    s1 += VecAct<VB>::keep_part(e, n - i);
  }
  s0 += s1;
  float sum = 0.0f;
  for (int j = 0; j < kL; ++j) sum += s0[j];
  const V inv = V{} + 1.0f / sum;
  i = 0;
  for (; i + kL <= n; i += kL) *reinterpret_cast<V*>(y + i) *= inv;
  if (i < n) VecAct<VB>::store_part(y + i, VecAct<VB>::load_part(y + i, n - i, 0.0f) * inv, n - i);
}

// y[i] = w0 * r0[i] + w1 * r1[i] for i in [0, n), or y[i] += that (accumulate): two rows of a
// uint8 frame blended in float (the frame ops' vertical pass, ops/frame_ops.cpp). On AVX-512
// and AVX2 each byte is widened straight to a 32-bit lane (vpmovzxbd), 16 bytes a step, where
// the plain loop below, compiled with those flags, widens twice (vpmovzxbw + vpmovsxwd). Elsewhere
// the plain loop on purpose: __builtin_convertvector from a uint8 vector is scalarised by GCC 12
// (one vcvtsi2ss per byte: 2x slower than the baseline loop).
#if defined(__AVX512F__)
inline __m512 widen16_u8(const uint8_t* p) {
  return _mm512_cvtepi32_ps(
      _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
}
#endif
// blend_rows_u8_tmpl's elements [i, n) one at a time (the vector paths' tail).
inline void blend_rows_u8_tail(const uint8_t* r0, const uint8_t* r1, float w0, float w1, float* y,
                               int64_t i, int64_t n, bool accumulate) {
  for (; i < n; ++i) {
    const float v = w0 * static_cast<float>(r0[i]) + w1 * static_cast<float>(r1[i]);
    y[i] = accumulate ? y[i] + v : v;
  }
}
#if defined(__AVX2__) && defined(__FMA__)
inline __m256 widen8_u8(const uint8_t* p) {
  return _mm256_cvtepi32_ps(
      _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}
#endif
template <int VB>
void blend_rows_u8_tmpl(const uint8_t* __restrict r0, const uint8_t* __restrict r1, float w0,
                        float w1, float* __restrict y, int64_t n, bool accumulate) {
#if defined(__AVX512F__)
  if constexpr (VB == 64) {
    int64_t i = 0;
    const __m512 v0 = _mm512_set1_ps(w0), v1 = _mm512_set1_ps(w1);
    for (; i + 16 <= n; i += 16) {
      __m512 v = _mm512_fmadd_ps(widen16_u8(r1 + i), v1, _mm512_mul_ps(widen16_u8(r0 + i), v0));
      if (accumulate) v = _mm512_add_ps(v, _mm512_loadu_ps(y + i));
      _mm512_storeu_ps(y + i, v);
    }
    return blend_rows_u8_tail(r0, r1, w0, w1, y, i, n, accumulate);
  }
#endif
#if defined(__AVX2__) && defined(__FMA__)
  if constexpr (VB == 32) {
    int64_t i = 0;
    const __m256 v0 = _mm256_set1_ps(w0), v1 = _mm256_set1_ps(w1);
    for (; i + 16 <= n; i += 16) {
      __m256 a = _mm256_fmadd_ps(widen8_u8(r1 + i), v1, _mm256_mul_ps(widen8_u8(r0 + i), v0));
      __m256 b =
          _mm256_fmadd_ps(widen8_u8(r1 + i + 8), v1, _mm256_mul_ps(widen8_u8(r0 + i + 8), v0));
      if (accumulate) {
        a = _mm256_add_ps(a, _mm256_loadu_ps(y + i));
        b = _mm256_add_ps(b, _mm256_loadu_ps(y + i + 8));
      }
      _mm256_storeu_ps(y + i, a);
      _mm256_storeu_ps(y + i + 8, b);
    }
    return blend_rows_u8_tail(r0, r1, w0, w1, y, i, n, accumulate);
  }
#endif
  if (accumulate)
    for (int64_t i = 0; i < n; ++i)
      y[i] += w0 * static_cast<float>(r0[i]) + w1 * static_cast<float>(r1[i]);
  else
    for (int64_t i = 0; i < n; ++i)
      y[i] = w0 * static_cast<float>(r0[i]) + w1 * static_cast<float>(r1[i]);
}

// acc + b * broadcast(*a). With AVX-512 the broadcast is the FMA's own memory operand
// ({1to16}), loaded again for each use, where GCC emits one vbroadcastss per A value: 2-7% on
// 1x1 layers with K of 320-960 (AVX-512 Zen 4, 1 thread: 320 -> 1280 at 7x7 0.466 -> 0.445 ms).
template <int VB>
inline typename VecAct<VB>::V fma_broadcast(typename VecAct<VB>::V acc, typename VecAct<VB>::V b,
                                            const float* a) {
#if defined(__AVX512F__)
  if constexpr (VB == 64) {
    __m512 r = __m512(acc);
    asm("vfmadd231ps %1%{1to16%}, %2, %0" : "+v"(r) : "m"(*a), "v"(__m512(b)));
    return reinterpret_cast<typename VecAct<VB>::V>(r);
  }
#endif
  return acc + *a * b;
}

// kRows: A read in place, row i at a + i * lda (MicroKernel::fn_rows); otherwise a packed panel
// (lda unused). R: the rows computed and stored, the first R of the MR-row panel (the short
// tiles of MicroKernel::fn_short); NC: the columns, the first NC of the NR-column panel
// (MicroKernel::fn_half).
template <int MR, int NR, int VB, bool kRows = false, int R = MR, int NC = NR>
void microkernel_tile(int64_t kc, const float* __restrict a, int64_t lda, const float* __restrict b,
                      int64_t ldb, float* __restrict c, int64_t ldc, float alpha, int accumulate,
                      const TileEpilogue* ep) {
  typedef typename VecAct<VB>::V V;
  constexpr int kLanes = VB / 4;
  constexpr int kNV = NC / kLanes;
  static_assert(kNV * kLanes == NC && NC <= NR, "NC must be a multiple of the vector width");
  V acc[R][kNV];
  for (int i = 0; i < R; ++i)
    for (int v = 0; v < kNV; ++v) acc[i][v] = V{};
  for (int64_t p = 0; p < kc; ++p) {
    const float* __restrict ap = kRows ? a + p : a + p * MR;
    const V* bp = reinterpret_cast<const V*>(b + p * ldb);
    V bv[kNV];
    for (int v = 0; v < kNV; ++v) bv[v] = bp[v];
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      const float* aptr = kRows ? ap + i * lda : ap + i;
      for (int v = 0; v < kNV; ++v) acc[i][v] = fma_broadcast<VB>(acc[i][v], bv[v], aptr);
    }
  }
  // The epilogue one step at a time over the whole tile, each step's test made once: the tile
  // stays in registers (a loop over vectors with every test and the activation's switch inside
  // it spilled the tile to the stack and ran the steps one vector after another; with K = 16,
  // a 1x1 layer with 16 input channels, that was a third of the tile's time).
  const auto each = [&](auto f) {
#pragma GCC unroll 64
    for (int i = 0; i < R; ++i)
#pragma GCC unroll 16
      for (int v = 0; v < kNV; ++v) acc[i][v] = f(acc[i][v], i, v);
  };
  if (alpha != 1.0f) each([&](V r, int, int) { return alpha * r; });
  if (accumulate)
    each([&](V r, int i, int v) { return r + reinterpret_cast<const V*>(c + i * ldc)[v]; });
  if (ep != nullptr) {
    if (ep->row_bias != nullptr) each([&](V r, int i, int) { return r + ep->row_bias[i]; });
    if (ep->col_bias != nullptr)
      each([&](V r, int, int v) { return r + reinterpret_cast<const V*>(ep->col_bias)[v]; });
    if (ep->clamp) {
      const V lo = V{} + ep->lo, hi = V{} + ep->hi;
      // (lo > r ? lo : r keeps a NaN, as r < lo ? lo : r)
      each([&](V r, int, int) { return VecAct<VB>::min(hi, VecAct<VB>::max(lo, r)); });
    }
    switch (ep->act) {
      case TileEpilogue::kHardSwish:
        each([&](V r, int, int) { return VecAct<VB>::hard_swish(r); });
        break;
      case TileEpilogue::kHardSigmoid:
        each([&](V r, int, int) { return VecAct<VB>::hard_sigmoid(r, ep->alpha, ep->beta); });
        break;
      case TileEpilogue::kSilu:
        each([&](V r, int, int) { return VecAct<VB>::silu(r); });
        break;
      case TileEpilogue::kGelu:
        each([&](V r, int, int) { return VecAct<VB>::gelu(r); });
        break;
      default:
        break;
    }
  }
#pragma GCC unroll 64
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 16
    for (int v = 0; v < kNV; ++v) reinterpret_cast<V*>(c + i * ldc)[v] = acc[i][v];
}

// out[x] = clamp(bias + sum_{r,t} w9[3r+t] * row_r[x*stride + t], lo, hi) for x in [0, count):
// the interior of one output row of a 3x3 depthwise convolution (no bounds checks; the caller
// handles borders).
inline void dw3x3_row_tmpl(const float* __restrict r0, const float* __restrict r1,
                           const float* __restrict r2, const float* __restrict w9, float bias,
                           float lo, float hi, float* __restrict out, int64_t count,
                           int64_t stride) {
  const float w0 = w9[0], w1 = w9[1], w2 = w9[2], w3 = w9[3], w4 = w9[4], w5 = w9[5], w6 = w9[6],
              w7 = w9[7], w8 = w9[8];
  if (stride == 1) {
    for (int64_t x = 0; x < count; ++x) {
      float v = bias + w0 * r0[x] + w1 * r0[x + 1] + w2 * r0[x + 2] + w3 * r1[x] + w4 * r1[x + 1] +
                w5 * r1[x + 2] + w6 * r2[x] + w7 * r2[x + 1] + w8 * r2[x + 2];
      v = v < lo ? lo : v;
      out[x] = v > hi ? hi : v;
    }
  } else {
    for (int64_t x = 0; x < count; ++x) {
      const int64_t s = x * 2;
      float v = bias + w0 * r0[s] + w1 * r0[s + 1] + w2 * r0[s + 2] + w3 * r1[s] + w4 * r1[s + 1] +
                w5 * r1[s + 2] + w6 * r2[s] + w7 * r2[s + 1] + w8 * r2[s + 2];
      v = v < lo ? lo : v;
      out[x] = v > hi ? hi : v;
    }
  }
}

// NV vectors of one depthwise row from x on: NV accumulators stay in registers over all taps, so
// the FMA chains run side by side instead of one after another (a chain of 25 dependent FMAs per
// vector made 5x5 rows latency-bound). The last vector may be partial (count - x < NV * lanes):
// it is computed whole and only [x, count) is stored.
template <int VB, int NV>
inline void dw_taps_block(const float* const* __restrict taps, const float* __restrict w, int ntaps,
                          float bias, float lo, float hi, float* __restrict out, int64_t x,
                          int64_t count) {
  typedef float V __attribute__((vector_size(VB), aligned(4), may_alias));
  constexpr int kL = VB / 4;
  V acc[NV];
  for (int v = 0; v < NV; ++v) acc[v] = V{} + bias;
  for (int t = 0; t < ntaps; ++t) {
    const V* src = reinterpret_cast<const V*>(taps[t] + x);
    const float wt = w[t];
    for (int v = 0; v < NV; ++v) acc[v] += wt * src[v];
  }
  const V vlo = V{} + lo, vhi = V{} + hi;
  for (int v = 0; v < NV; ++v) {
    V a = VecAct<VB>::max(vlo, acc[v]);
    a = VecAct<VB>::min(vhi, a);
    const int64_t at = x + v * kL;
    if (at + kL <= count) {
      *reinterpret_cast<V*>(out + at) = a;
    } else {
      float tail[kL];
      *reinterpret_cast<V*>(tail) = a;
      for (int i = 0; at + i < count; ++i) out[at + i] = tail[i];
    }
  }
}

// out[x] = clamp(bias + sum_t w[t] * taps[t][x], lo, hi) for x in [0, count): one output row
// of a depthwise convolution whose every tap reads a contiguous run (the caller lays the padded
// input out so that strided taps are contiguous: one plane per column phase). Blocks of four
// vectors, then the rest (one to four vectors, the last maybe partial) in one more pass over the
// taps; explicit vector types, so armv7 gets NEON too (GCC does not auto-vectorise float there
// without -ffast-math). The last partial vector is computed whole: every taps[t] must stay
// readable up to index round_up(count, VB / 4) - 1 (the values read past count are dropped).
template <int VB>
void dw_taps_row_tmpl(const float* const* __restrict taps, const float* __restrict w, int ntaps,
                      float bias, float lo, float hi, float* __restrict out, int64_t count) {
  constexpr int kL = VB / 4;
  int64_t x = 0;
  for (; x + 4 * kL <= count; x += 4 * kL)
    dw_taps_block<VB, 4>(taps, w, ntaps, bias, lo, hi, out, x, count);
  switch ((count - x + kL - 1) / kL) {
    case 1:
      dw_taps_block<VB, 1>(taps, w, ntaps, bias, lo, hi, out, x, count);
      break;
    case 2:
      dw_taps_block<VB, 2>(taps, w, ntaps, bias, lo, hi, out, x, count);
      break;
    case 3:
      dw_taps_block<VB, 3>(taps, w, ntaps, bias, lo, hi, out, x, count);
      break;
    case 4:
      dw_taps_block<VB, 4>(taps, w, ntaps, bias, lo, hi, out, x, count);
      break;
    default:
      break;
  }
}

// R consecutive output pixels of one channel block, starting at input pixel `in` (the window's
// top-left tap): acc = bias + sum over taps t of w[t] (x) in[off[t] + r * step], every operand a
// vector of L channels, so any stride or dilation is a plain vector load; then the clamp and
// activation of `ep` in registers, stored as R pixel vectors at out. STEP: the distance between
// output pixels in floats when it is a compile-time constant (stride 1 and 2), else 0 and `step`
// holds it.
template <int VB, int R, int STEP>
inline void dw_cblock_px(const float* __restrict in, const float* __restrict w,
                         const float* __restrict bias, const int32_t* __restrict off, int taps,
                         int64_t step, const TileEpilogue& ep, float* __restrict out) {
  typedef typename VecAct<VB>::V V;
  constexpr int kL = VB / 4;
  if (STEP != 0) step = STEP;
  V acc[R];
  const V b = *reinterpret_cast<const V*>(bias);
  for (int r = 0; r < R; ++r) acc[r] = b;
  for (int t = 0; t < taps; ++t) {
    const V wv = *reinterpret_cast<const V*>(w + t * kL);
    const float* px = in + off[t];
    for (int r = 0; r < R; ++r) acc[r] += wv * *reinterpret_cast<const V*>(px + r * step);
  }
  for (int r = 0; r < R; ++r) {
    V a = acc[r];
    if (ep.clamp) {
      const V lo = V{} + ep.lo, hi = V{} + ep.hi;
      a = VecAct<VB>::max(lo, a);
      a = VecAct<VB>::min(hi, a);
    }
    if (ep.act != TileEpilogue::kNone) a = VecAct<VB>::act(ep, a);
    *reinterpret_cast<V*>(out + r * kL) = a;
  }
}

template <int VB, int STEP>
void dw_cblock_rows(const float* in, const float* w, const float* bias, const int32_t* off,
                    const DwBlock& g, const TileEpilogue& ep, float* out) {
  constexpr int kL = VB / 4, kR = 4;
  const int taps = static_cast<int>(g.kernel_h * g.kernel_w);
  const int64_t step = g.stride_w * kL;
  for (int64_t oh = 0; oh < g.out_h; ++oh) {
    const float* row = in + oh * g.stride_h * g.in_w * kL;
    float* o = out + oh * g.out_w * kL;
    int64_t ow = 0;
    for (; ow + kR <= g.out_w; ow += kR)
      dw_cblock_px<VB, kR, STEP>(row + ow * step, w, bias, off, taps, step, ep, o + ow * kL);
    switch (g.out_w - ow) {
      case 1:
        dw_cblock_px<VB, 1, STEP>(row + ow * step, w, bias, off, taps, step, ep, o + ow * kL);
        break;
      case 2:
        dw_cblock_px<VB, 2, STEP>(row + ow * step, w, bias, off, taps, step, ep, o + ow * kL);
        break;
      case 3:
        dw_cblock_px<VB, 3, STEP>(row + ow * step, w, bias, off, taps, step, ep, o + ow * kL);
        break;
      default:
        break;
    }
  }
}

// Lane zips of two vectors: lo = (a0 b0 a1 b1 ...) from their first halves, hi from the second.
// (Partial specialisations, so a file built without AVX never instantiates the wider ones.)
template <int VB, int kUnused = 0>
struct Zip;
template <int kUnused>
struct Zip<16, kUnused> {
  typedef float V __attribute__((vector_size(16), aligned(4), may_alias));
  static V lo(V a, V b) { return __builtin_shufflevector(a, b, 0, 4, 1, 5); }
  static V hi(V a, V b) { return __builtin_shufflevector(a, b, 2, 6, 3, 7); }
};
template <int kUnused>
struct Zip<32, kUnused> {
  typedef float V __attribute__((vector_size(32), aligned(4), may_alias));
  static V lo(V a, V b) { return __builtin_shufflevector(a, b, 0, 8, 1, 9, 2, 10, 3, 11); }
  static V hi(V a, V b) { return __builtin_shufflevector(a, b, 4, 12, 5, 13, 6, 14, 7, 15); }
};
template <int kUnused>
struct Zip<64, kUnused> {
  typedef float V __attribute__((vector_size(64), aligned(4), may_alias));
  static V lo(V a, V b) {
    return __builtin_shufflevector(a, b, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  }
  static V hi(V a, V b) {
    return __builtin_shufflevector(a, b, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15,
                                   31);
  }
};

// Transposes the L x L tile r[0..L) (L = VB / 4 lanes) in registers: log2(L) rounds of zipping
// row i with row i + L / 2 (the perfect shuffle), which leave row j holding column j.
template <int VB>
inline void transpose_tile(typename Zip<VB>::V* r) {
  typedef typename Zip<VB>::V V;
  constexpr int kL = VB / 4;
  for (int len = 1; len < kL; len *= 2) {
    V n[kL];
#pragma GCC unroll 16
    for (int i = 0; i < kL / 2; ++i) {
      n[2 * i] = Zip<VB>::lo(r[i], r[i + kL / 2]);
      n[2 * i + 1] = Zip<VB>::hi(r[i], r[i + kL / 2]);
    }
#pragma GCC unroll 16
    for (int i = 0; i < kL; ++i) r[i] = n[i];
  }
}

// Channels [0, channels) of up to L = VB / 4 NCHW planes (plane c at src + c * src_plane, h x w)
// into the interleaved block of dw_cblock_tmpl: pixel (i, j) of channel c at
// dst[((i + pad_top) * padded_w + j + pad_left) * L + c]. The pads are not written. The planes are
// read as flat runs of L pixels, transposed in registers and stored one pixel vector at a time
// (lanes past `channels` hold zeros).
template <int VB>
void dw_pack_tmpl(const float* src, int64_t src_plane, int channels, int64_t h, int64_t w,
                  int64_t pad_top, int64_t pad_left, int64_t padded_w, float* dst) {
  typedef typename Zip<VB>::V V;
  constexpr int kL = VB / 4;
  const int64_t n = h * w;
  int64_t pix = 0, row = 0, col = 0;
  for (; pix + kL <= n; pix += kL) {
    V r[kL];
    for (int c = 0; c < kL; ++c)
      r[c] = c < channels ? *reinterpret_cast<const V*>(src + c * src_plane + pix) : V{};
    transpose_tile<VB>(r);
    for (int j = 0; j < kL; ++j) {
      *reinterpret_cast<V*>(dst + ((row + pad_top) * padded_w + col + pad_left) * kL) = r[j];
      if (++col == w) {
        col = 0;
        ++row;
      }
    }
  }
  for (; pix < n; ++pix) {
    float* d = dst + ((row + pad_top) * padded_w + col + pad_left) * kL;
    for (int c = 0; c < channels; ++c) d[c] = src[c * src_plane + pix];
    if (++col == w) {
      col = 0;
      ++row;
    }
  }
}

// The inverse of dw_pack_tmpl without pads: n interleaved pixel vectors at src (pixel p of
// channel c at src[p * L + c]) into channels [0, channels) of NCHW planes (channel c's pixel p at
// dst[c * dst_plane + p]), L pixels at a time transposed in registers.
template <int VB>
void dw_unpack_tmpl(const float* src, int64_t n, int channels, float* dst, int64_t dst_plane) {
  typedef typename Zip<VB>::V V;
  constexpr int kL = VB / 4;
  int64_t pix = 0;
  for (; pix + kL <= n; pix += kL) {
    V r[kL];
    for (int j = 0; j < kL; ++j) r[j] = *reinterpret_cast<const V*>(src + (pix + j) * kL);
    transpose_tile<VB>(r);
    for (int c = 0; c < channels; ++c) *reinterpret_cast<V*>(dst + c * dst_plane + pix) = r[c];
  }
  for (; pix < n; ++pix)
    for (int c = 0; c < channels; ++c) dst[c * dst_plane + pix] = src[pix * kL + c];
}

// The depthwise convolution of one block of L = VB / 4 channels, channel-interleaved: padded
// input pixel (i, j) of channel c at in[(i * g.in_w + j) * L + c] (zero-padded, covering every
// tap), weights w[tap * L + c], bias[c] (L floats each, zero past g.channels). Computes the output
// block interleaved into work (out_h * out_w * L floats), after the clamp and activation of `ep`
// (its bias fields are not read), then writes channel c's plane at out + c * g.out_plane (NCHW).
// Small planes (7x7, 14x14) leave most lanes of a row-wise vector idle; here every lane is a
// channel, whatever the width, stride or dilation. At most kMaxBlockedDwTaps taps.
constexpr int kMaxBlockedDwTaps = 64;
template <int VB>
void dw_cblock_tmpl(const float* in, const float* w, const float* bias, const DwBlock& g,
                    const TileEpilogue& ep, float* work, float* out) {
  constexpr int kL = VB / 4;
  int32_t off[kMaxBlockedDwTaps];  // where each tap reads, from the window's top-left pixel
  for (int64_t kh = 0; kh < g.kernel_h; ++kh)
    for (int64_t kw = 0; kw < g.kernel_w; ++kw)
      off[kh * g.kernel_w + kw] =
          static_cast<int32_t>((kh * g.dilation_h * g.in_w + kw * g.dilation_w) * kL);
  if (g.stride_w == 1)
    dw_cblock_rows<VB, kL>(in, w, bias, off, g, ep, work);
  else if (g.stride_w == 2)
    dw_cblock_rows<VB, 2 * kL>(in, w, bias, off, g, ep, work);
  else
    dw_cblock_rows<VB, 0>(in, w, bias, off, g, ep, work);
  dw_unpack_tmpl<VB>(work, g.out_h * g.out_w, g.channels, out, g.out_plane);
}

// R output pixels of NB blocks of output channels: acc[b][r] = bias + sum over taps t of w[b][t]
// (x) broadcast(src[off[t] + r * stride_w]); then clamp + activation, stored at
// work[b * blk_floats + r * L].
template <int VB, int NB, int R>
inline void conv_oc_px(const OcConv& g, const int32_t* __restrict off, const float* __restrict w,
                       const float* __restrict bias, const float* __restrict src,
                       const TileEpilogue& ep, float* __restrict work, int64_t blk_floats) {
  typedef typename VecAct<VB>::V V;
  constexpr int kL = VB / 4;
  const int64_t step = g.stride_w, wstride = static_cast<int64_t>(g.taps) * kL;
  V acc[NB][R];
  for (int b = 0; b < NB; ++b) {
    const V bv = *reinterpret_cast<const V*>(bias + b * kL);
    for (int r = 0; r < R; ++r) acc[b][r] = bv;
  }
  for (int t = 0; t < g.taps; ++t) {
    V wv[NB];
    for (int b = 0; b < NB; ++b) wv[b] = *reinterpret_cast<const V*>(w + b * wstride + t * kL);
    const float* s = src + off[t];
    for (int r = 0; r < R; ++r) {
      const float x = s[r * step];  // (scalar x vector: a broadcast; V{} + x would add 0 first)
      for (int b = 0; b < NB; ++b) acc[b][r] += wv[b] * x;
    }
  }
  for (int b = 0; b < NB; ++b)
    for (int r = 0; r < R; ++r) {
      V a = acc[b][r];
      if (ep.clamp) {
        const V lo = V{} + ep.lo, hi = V{} + ep.hi;
        a = VecAct<VB>::max(lo, a);
        a = VecAct<VB>::min(hi, a);
      }
      if (ep.act != TileEpilogue::kNone) a = VecAct<VB>::act(ep, a);
      *reinterpret_cast<V*>(work + b * blk_floats + r * kL) = a;
    }
}

template <int VB, int NB>
void conv_oc_row_nb(const OcConv& g, const int32_t* off, int64_t oh, int64_t blk,
                    const TileEpilogue& ep, float* work) {
  constexpr int kL = VB / 4, kR = 6;
  const float* w = g.w + blk * g.taps * kL;
  const float* bias = g.bias + blk * kL;
  const float* row = g.in + oh * g.stride_h * g.in_w;
  const int64_t blk_floats = g.out_w * kL;
  int64_t ow = 0;
  for (; ow + kR <= g.out_w; ow += kR)
    conv_oc_px<VB, NB, kR>(g, off, w, bias, row + ow * g.stride_w, ep, work + ow * kL, blk_floats);
  for (; ow < g.out_w; ++ow)
    conv_oc_px<VB, NB, 1>(g, off, w, bias, row + ow * g.stride_w, ep, work + ow * kL, blk_floats);
}

// Output row oh of blocks [blk, blk + nblk) of L = VB / 4 output channels: pixel j of block
// blk + b at work[(b * g.out_w + j) * L] (L channels), after bias, clamp and activation. Input
// values are broadcast from the zero-padded planes (no im2col), weights are vectors of L output
// channels: two blocks and six pixels per register tile (12 accumulators, 8 loads per 12 FMAs).
constexpr int kMaxOcConvTaps = 64;
template <int VB>
void conv_oc_row_tmpl(const OcConv& g, int64_t oh, int64_t blk, int nblk, const TileEpilogue& ep,
                      float* work) {
  int32_t off[kMaxOcConvTaps];  // where each tap reads, from the window's top-left input pixel
  const int64_t khw = g.kernel_h * g.kernel_w;
  for (int t = 0; t < g.taps; ++t) {
    const int64_t ci = t / khw, kh = (t % khw) / g.kernel_w, kw = t % g.kernel_w;
    off[t] = static_cast<int32_t>(ci * g.in_plane + kh * g.dilation_h * g.in_w + kw * g.dilation_w);
  }
  if (nblk == 2)
    conv_oc_row_nb<VB, 2>(g, off, oh, blk, ep, work);
  else
    conv_oc_row_nb<VB, 1>(g, off, oh, blk, ep, work);
}

// The kernel table of one instruction set: this header's templates for its tile shape and vector
// width (VB bytes), instantiated in the file compiled with that instruction set's flags.
template <int MR, int NR, int VB, int R>
constexpr MicroKernelFn short_tile() {
  if constexpr (R > 0 && R < MR)
    return microkernel_tile<MR, NR, VB, false, R>;
  else
    return nullptr;
}

template <int MR, int NR, int KC, int VB>
constexpr MicroKernel make_microkernel(const char* isa, int kc_one_panel = 0) {
  static_assert(MR <= kMaxMR, "kMaxMR is the largest MR");
  return {MR,
          NR,
          KC,
          isa,
          microkernel_tile<MR, NR, VB, false>,
          dw3x3_row_tmpl,
          dw_taps_row_tmpl<VB>,
          act_row_tmpl<VB>,
          VB / 4,
          dw_cblock_tmpl<VB>,
          dw_pack_tmpl<VB>,
          conv_oc_row_tmpl<VB>,
          dw_unpack_tmpl<VB>,
          microkernel_tile<MR, NR, VB, true>,
          softmax_row_tmpl<VB>,
          blend_rows_u8_tmpl<VB>,
          {short_tile<MR, NR, VB, 0>(), short_tile<MR, NR, VB, 1>(), short_tile<MR, NR, VB, 2>(),
           short_tile<MR, NR, VB, 3>(), short_tile<MR, NR, VB, 4>(), short_tile<MR, NR, VB, 5>(),
           short_tile<MR, NR, VB, 6>(), short_tile<MR, NR, VB, 7>()},
          microkernel_tile<MR, NR, VB, false, MR, NR / 2>,
          kc_one_panel};
}

}  // namespace

}  // namespace kernels
}  // namespace edgepack

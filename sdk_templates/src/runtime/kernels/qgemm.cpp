// SPDX-License-Identifier: Apache-2.0
// int8 GEMM (qgemm.h): weight and panel packing, the portable and NEON micro-kernels, the
// fixed-point requantising epilogue, threading and dispatch. The AVX2 micro-kernel is in
// qgemm_avx2.cpp, the AVX-512 VNNI one in qgemm_avx512vnni.cpp, the aarch64 dot product (SDOT)
// one in qgemm_dotprod.cpp.
#include "runtime/kernels/qgemm.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "runtime/kernels/cpu_isa.h"
#include "runtime/kernels/threadpool.h"

#if defined(__ARM_NEON) || defined(__ARM_NEON__)
#include <arm_neon.h>
#define EDGEPACK_QGEMM_NEON 1
#endif
#if defined(__SSE2__)
#include <emmintrin.h>  // baseline on x86-64: the panel transpose
#endif
// EDGEPACK_QGEMM_DOTPROD: the build compiled qgemm_dotprod.cpp (the board file's cpu features
// list dotprod; kernels/CMakeLists.txt). Whether this CPU has it is asked at run time.
#if defined(EDGEPACK_QGEMM_DOTPROD) && defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20)  // <asm/hwcap.h>: the dot product instructions
#endif
#else
#undef EDGEPACK_QGEMM_DOTPROD
#endif

namespace edgepack {
namespace kernels {

// Defined in qgemm_avx2.cpp (x86 builds only, compiled with -mavx2).
void qgemm_tile_avx2(const int8_t* wb, const uint8_t* panel, int64_t quads, int halves,
                     int32_t* acc);
void qgemm_requant16_avx2(const int32_t* a, int32_t add, int64_t m0, int total, int32_t zo,
                          uint8_t* d);
void qgemm_tile_requant_avx2(const int8_t* wb, const uint8_t* panel, int64_t quads, int halves,
                             const QRowQuant* rq, int rows, int32_t zo, uint8_t* out, int64_t ldo);
// Defined in qgemm_avx512vnni.cpp (x86 builds only, compiled with -mavx512f/bw/vl/vnni).
void qgemm_tile_avx512vnni(const int8_t* wb, const uint8_t* panel, int64_t quads, int halves,
                           int32_t* acc);
void qgemm_panels_requant_avx512vnni(const int8_t* wb, const uint8_t* panel, size_t stride,
                                     int64_t count, int last_cols, const uint8_t* tail,
                                     size_t tail_stride, int64_t quads, int halves,
                                     const QRowQuant* rq, int rows, int32_t zo, uint8_t* out,
                                     int64_t ldo);
void qgemm_pack_gather_avx512vbmi(const uint8_t* base, const int32_t* row, const int32_t* col,
                                  int64_t quads, int64_t p0, int64_t cols, uint8_t* panel);
// Defined in qgemm_dotprod.cpp (aarch64 builds for boards with the dotprod feature).
void qgemm_tile_dotprod(const int8_t* wb, const uint8_t* panel, int64_t quads, int halves,
                        int32_t* acc);

namespace {

constexpr int kMr = kQgemmMr, kNr = kQgemmNr;
// A thread packs up to kGroupBytes of panels (at most kMaxGroup) before running the weight blocks
// over them: a block is read once per group (from L1) and the group stays in L2 (512 KiB and up
// on the x86 and Cortex-A cores edgepack targets), not the whole weight matrix once per panel.
// On x86 (1 MiB and more of L2 per core on Zen 4 and the Xeons) 512 KiB: a deep layer's whole
// band is then one group, its weights read once (ResNet-18's 512x4608 7x7 layers, 3 panels and
// a tail in two groups before, each reading 2.4 MB of weights: 0.675 -> 0.645 ms).
#if defined(__x86_64__) || defined(__i386__)
constexpr size_t kGroupBytes = 512 * 1024;
#else
constexpr size_t kGroupBytes = 256 * 1024;
#endif
// Up to 64 panels of a shallow layer (k = 16: 256 bytes each): a weight block then writes 1 KiB
// runs of each of its 4 output rows, not 128 bytes, and the output's many rows (NCHW: one per
// channel, 12544 bytes apart at 112x112) stream far better (MobileNetV2's 16->96 expansion at
// 112x112 0.275 -> 0.237 ms, 24->144 at 56x56 0.118 -> 0.104; GEMM alone, 8 rounds, minima).
constexpr int64_t kMaxGroup = 64;

size_t panel_bytes(int64_t k) {
  return static_cast<size_t>((k + 3) / 4 * kNr * 4);
}

// A narrow last panel (at most kQgemmTailMax columns) of a deep GEMM runs from expanded copies
// of its columns where the kernel has panels_requant (AVX-512 VNNI): a 16-column panel there
// would multiply mostly padding (ResNet-18's 7x7 layers: 49 = 3 x 16 + 1 columns). Per column
// 64 bytes per 4 quads (tail_stride).
constexpr int64_t kTailMinQuads = 16;

size_t tail_stride(int64_t k) {
  return static_cast<size_t>(((k + 3) / 4 + 3) / 4 * 64);
}

int64_t group_panels(int64_t k) {
  return std::max<int64_t>(1, std::min<int64_t>(kMaxGroup, int64_t(kGroupBytes / panel_bytes(k))));
}

// acc[kMr][kNr] = sum over quads and halves of the packed weight block wb (per quad: halves x
// kMr rows x 4 bytes) times the packed panel (per quad: kNr columns x 4 bytes).
using TileFn = void (*)(const int8_t* wb, const uint8_t* panel, int64_t quads, int halves,
                        int32_t* acc);

void tile_generic(const int8_t* wb, const uint8_t* panel, int64_t quads, int halves, int32_t* acc) {
  int32_t s[kMr][kNr] = {};
  for (int64_t q = 0; q < quads; ++q) {
    const uint8_t* x = panel + q * kNr * 4;
    for (int h = 0; h < halves; ++h, wb += kMr * 4) {
      for (int r = 0; r < kMr; ++r) {
        const int8_t* w = wb + r * 4;
        for (int t = 0; t < kNr; ++t) {
          const uint8_t* xt = x + t * 4;
          s[r][t] += int32_t(w[0]) * xt[0] + int32_t(w[1]) * xt[1] + int32_t(w[2]) * xt[2] +
                     int32_t(w[3]) * xt[3];
        }
      }
    }
  }
  std::memcpy(acc, s, sizeof(s));
}

#ifdef EDGEPACK_QGEMM_NEON
// ARMv8.0 widening multiply-accumulate: per (row, pixel) one int32x4 of the quad's four k lanes
// (u8 and s8 widened to s16, vmlal_s16), summed across lanes at the end. kNp pixels at a time
// keep kMr * kNp accumulators in registers (32 vector registers on aarch64, 16 on armv7).
#if defined(__aarch64__)
constexpr int kNp = 4;
#else
constexpr int kNp = 2;
#endif

inline int32_t lanes_sum(int32x4_t v) {
  const int32x2_t s = vadd_s32(vget_low_s32(v), vget_high_s32(v));
  return vget_lane_s32(vpadd_s32(s, s), 0);
}

void tile_neon(const int8_t* wb, const uint8_t* panel, int64_t quads, int halves, int32_t* acc) {
  for (int t0 = 0; t0 < kNr; t0 += kNp) {
    int32x4_t a[kMr][kNp];
    for (int r = 0; r < kMr; ++r)
      for (int t = 0; t < kNp; ++t) a[r][t] = vdupq_n_s32(0);
    const int8_t* w = wb;
    for (int64_t q = 0; q < quads; ++q) {
      const uint8_t* x = panel + q * kNr * 4 + t0 * 4;
      int16x8_t xs[kNp / 2];
      for (int i = 0; i < kNp / 2; ++i)
        xs[i] = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(x + i * 8)));  // 2 pixels x 4 k
      for (int h = 0; h < halves; ++h, w += kMr * 4) {
        for (int r = 0; r < kMr; ++r) {
          int32_t w4;
          std::memcpy(&w4, w + r * 4, 4);
          const int16x4_t wv = vget_low_s16(vmovl_s8(vreinterpret_s8_s32(vdup_n_s32(w4))));
          for (int i = 0; i < kNp / 2; ++i) {
            a[r][2 * i] = vmlal_s16(a[r][2 * i], vget_low_s16(xs[i]), wv);
            a[r][2 * i + 1] = vmlal_s16(a[r][2 * i + 1], vget_high_s16(xs[i]), wv);
          }
        }
      }
    }
    for (int r = 0; r < kMr; ++r)
      for (int t = 0; t < kNp; ++t) acc[r * kNr + t0 + t] = lanes_sum(a[r][t]);
  }
}
#endif

// kNr requantised bytes of one tile row (M < 1); nullptr: the scalar epilogue.
using Requant16Fn = void (*)(const int32_t* a, int32_t add, int64_t m0, int total, int32_t zo,
                             uint8_t* d);

#ifdef EDGEPACK_QGEMM_NEON
// The NEON epilogue, bytes equal to requant() (and to the AVX2 one): per lane |a + add| * m0 in
// 64 bits (vmull_u32), + half, logical shift right by total, the sign put back, + zo, then
// saturating narrows to uint8 (the clamp). M < 1, so the shifted value is below 2^31; it is
// capped at 2^20 so that adding zo cannot wrap.
void requant16_neon(const int32_t* a, int32_t add, int64_t m0, int total, int32_t zo, uint8_t* d) {
  const int32x4_t vadd = vdupq_n_s32(add), vzo = vdupq_n_s32(zo);
  const uint32x2_t vm0 = vdup_n_u32(static_cast<uint32_t>(m0));
  const uint64x2_t half = vdupq_n_u64(uint64_t(1) << (total - 1));
  const int64x2_t shift = vdupq_n_s64(-total);
  const uint32x4_t cap = vdupq_n_u32(1u << 20);
  int16x8_t h[2];
  for (int i = 0; i < 2; ++i) {
    int32x4_t y[2];
    for (int j = 0; j < 2; ++j) {
      const int32x4_t v = vaddq_s32(vld1q_s32(a + 8 * i + 4 * j), vadd);
      const uint32x4_t x = vreinterpretq_u32_s32(vabsq_s32(v));  // |INT32_MIN| reads 2^31
      const uint64x2_t lo = vshlq_u64(vaddq_u64(vmull_u32(vget_low_u32(x), vm0), half), shift);
      const uint64x2_t hi = vshlq_u64(vaddq_u64(vmull_u32(vget_high_u32(x), vm0), half), shift);
      const int32x4_t r =
          vreinterpretq_s32_u32(vminq_u32(vcombine_u32(vmovn_u64(lo), vmovn_u64(hi)), cap));
      const int32x4_t sign = vshrq_n_s32(v, 31);  // 0 or -1
      y[j] = vaddq_s32(vsubq_s32(veorq_s32(r, sign), sign), vzo);
    }
    h[i] = vcombine_s16(vqmovn_s32(y[0]), vqmovn_s32(y[1]));
  }
  vst1q_u8(d, vcombine_u8(vqmovun_s16(h[0]), vqmovun_s16(h[1])));
}
#endif

// A full-width tile (kNr columns) requantised straight from the registers: rows of rq, out with
// row stride ldo; nullptr: tile + epilogue.
using TileRequantFn = void (*)(const int8_t* wb, const uint8_t* panel, int64_t quads, int halves,
                               const QRowQuant* rq, int rows, int32_t zo, uint8_t* out,
                               int64_t ldo);

// The `count` panels of a group (`stride` bytes apart, the last one last_cols wide, the others
// kNr) requantised straight from the registers; takes the place of tile_requant. With `tail`
// (last_cols <= kQgemmTailMax) the last panel's columns are read from their expanded copies
// there instead (expand_tail), tail_stride bytes apart.
using PanelsRequantFn = void (*)(const int8_t* wb, const uint8_t* panel, size_t stride,
                                 int64_t count, int last_cols, const uint8_t* tail,
                                 size_t tail_stride, int64_t quads, int halves, const QRowQuant* rq,
                                 int rows, int32_t zo, uint8_t* out, int64_t ldo);

struct Kernel {
  TileFn tile;
  Requant16Fn requant16;
  TileRequantFn tile_requant;
  PanelsRequantFn panels_requant;
  const char* isa;
  // The panel holds x - x_offset (SDOT: signed x signed, so 128: the packed panel's bytes are
  // flipped, x ^ 0x80); the epilogue adds x_offset * sum_k w back.
  int32_t x_offset;
  // The tile sums pairs of u8 x s8 products in int16 with saturation (vpmaddubsw): weights
  // beyond [-64, 64] are packed as two halves (qgemm.h). The other tiles are exact as they are.
  bool pairs_saturate;
};

// The best kernel this CPU supports, capped by EDGEPACK_CPU_ISA (cpu_isa.h).
Kernel choose() {
  const Kernel generic = {tile_generic, nullptr, nullptr, nullptr, "generic", 0, false};
  if (cpu_isa_capped_at("generic")) return generic;
#if defined(__x86_64__) || defined(__i386__)
  const X86Isa isa = x86_isa();
  if (isa == X86Isa::kAvx512Vnni)
    return {qgemm_tile_avx512vnni,
            qgemm_requant16_avx2,
            nullptr,
            qgemm_panels_requant_avx512vnni,
            "avx512vnni",
            0,
            false};
  if (isa != X86Isa::kGeneric)
    return {
        qgemm_tile_avx2, qgemm_requant16_avx2, qgemm_tile_requant_avx2, nullptr, "avx2", 0, true};
#endif
#ifdef EDGEPACK_QGEMM_DOTPROD
  if (!cpu_isa_capped_at("neon") && (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0)
    return {qgemm_tile_dotprod, requant16_neon, nullptr, nullptr, "dotprod", 128, false};
#endif
#ifdef EDGEPACK_QGEMM_NEON
  return {tile_neon, requant16_neon, nullptr, nullptr, "neon", 0, false};
#else
  return generic;
#endif
}

const Kernel& kernel() {
  static const Kernel k = choose();
  return k;
}

// Columns [p0, p0 + cols) of x (k rows, row stride ldx) into one panel: per quad, kNr columns
// of 4 bytes; columns past cols and k past the end are 0 (their weights are 0).
void pack_panel(const uint8_t* x, int64_t ldx, int64_t k, int64_t quads, int64_t p0, int64_t cols,
                uint8_t* panel) {
  int64_t q = 0;
  if (cols == kNr) {  // full quads of a full panel: a 4 x 16 byte transpose
    static_assert(kNr == 16, "one 16-byte vector per row");
    for (; q < k / 4; ++q) {
      const uint8_t* r = x + q * 4 * ldx + p0;
      uint8_t* d = panel + q * kNr * 4;
#if defined(__SSE2__)
      const __m128i r0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(r));
      const __m128i r1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(r + ldx));
      const __m128i r2 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(r + 2 * ldx));
      const __m128i r3 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(r + 3 * ldx));
      const __m128i a = _mm_unpacklo_epi8(r0, r1), b = _mm_unpackhi_epi8(r0, r1);
      const __m128i c = _mm_unpacklo_epi8(r2, r3), e = _mm_unpackhi_epi8(r2, r3);
      __m128i* o = reinterpret_cast<__m128i*>(d);
      _mm_storeu_si128(o + 0, _mm_unpacklo_epi16(a, c));
      _mm_storeu_si128(o + 1, _mm_unpackhi_epi16(a, c));
      _mm_storeu_si128(o + 2, _mm_unpacklo_epi16(b, e));
      _mm_storeu_si128(o + 3, _mm_unpackhi_epi16(b, e));
#elif defined(EDGEPACK_QGEMM_NEON)
      uint8x16x4_t v;
      v.val[0] = vld1q_u8(r);
      v.val[1] = vld1q_u8(r + ldx);
      v.val[2] = vld1q_u8(r + 2 * ldx);
      v.val[3] = vld1q_u8(r + 3 * ldx);
      vst4q_u8(d, v);
#else
      for (int64_t t = 0; t < kNr; ++t)
        for (int i = 0; i < 4; ++i) d[t * 4 + i] = r[i * ldx + t];
#endif
    }
    if (q == quads) return;
  }
  std::memset(panel + q * kNr * 4, 0, static_cast<size_t>((quads - q) * kNr * 4));
  for (; q < quads; ++q) {
    uint8_t* d = panel + q * kNr * 4;
    const int64_t rows = std::min<int64_t>(4, k - q * 4);
    for (int64_t i = 0; i < rows; ++i) {
      const uint8_t* row = x + (q * 4 + i) * ldx + p0;
      for (int64_t t = 0; t < cols; ++t) d[t * 4 + i] = row[t];
    }
  }
}

// Per output row: the fixed-point multiplier as (m0, right shift, rounding half).
struct RowQuant {
  int64_t m0;
  int total;
  int64_t half;
};

inline RowQuant row_quant(QuantMultiplier m) {
  int total = 31 - m.shift;
  total = std::min(62, std::max(1, total));
  return {int64_t(m.m0), total, int64_t(1) << (total - 1)};
}

inline uint8_t requant(int32_t v, const RowQuant& q, int32_t zo) {
  const int64_t ab = int64_t(v) * q.m0;
  const int64_t r = ab >= 0 ? (ab + q.half) >> q.total : -((-ab + q.half) >> q.total);
  const int64_t y = r + zo;
  return static_cast<uint8_t>(y < 0 ? 0 : (y > 255 ? 255 : y));
}

void requantize(const int32_t* a, int64_t n, int32_t add, QuantMultiplier m, uint8_t zo, uint8_t* d,
                Requant16Fn requant16) {
  const RowQuant q = row_quant(m);
  int64_t t = 0;
  if (requant16 != nullptr && m.shift <= 0) {
    for (; t + kNr <= n; t += kNr) requant16(a + t, add, q.m0, q.total, zo, d + t);
    if (t < n) {  // the tail through a full-width copy
      int32_t tail_in[kNr] = {};
      uint8_t tail_out[kNr];
      std::memcpy(tail_in, a + t, static_cast<size_t>(n - t) * sizeof(int32_t));
      requant16(tail_in, add, q.m0, q.total, zo, tail_out);
      std::memcpy(d + t, tail_out, static_cast<size_t>(n - t));
    }
    return;
  }
  for (; t < n; ++t) d[t] = requant(a[t] + add, q, zo);
}

inline int32_t row_add(const QGemmWeights& w, const QGemmOutput& o, int64_t j, const Kernel& kn) {
  return (o.bias != nullptr ? o.bias[j] : 0) + (kn.x_offset - int32_t(o.za)) * w.sums[size_t(j)];
}

// The requantisation of rows [j0, j0 + rows) for the fused tile; false when a row's M >= 1 (the
// scalar epilogue) or there is no requantisation.
bool row_quants(const QGemmWeights& w, const QGemmOutput& o, int64_t j0, int64_t rows,
                const Kernel& kn, QRowQuant* rq) {
  if (o.mult == nullptr) return false;
  for (int64_t r = 0; r < rows; ++r) {
    const QuantMultiplier m = o.mult[j0 + r];
    if (m.shift > 0) return false;
    const RowQuant q = row_quant(m);
    // float(m0) (rounded once) times 2^-total (exact): m0 * 2^-total rounded to float.
    uint32_t bits = uint32_t(127 - q.total) << 23;
    float scale;
    std::memcpy(&scale, &bits, sizeof(scale));
    rq[r] = {row_add(w, o, j0 + r, kn), q.total, q.m0, float(q.m0) * scale};
  }
  return true;
}

// The tile of rows [j0, j0 + rows) x columns [p0, p0 + cols) to its destination.
void epilogue(const int32_t* acc, const QGemmWeights& w, const QGemmOutput& o, int64_t j0,
              int64_t rows, int64_t p0, int64_t cols, const Kernel& kn) {
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t j = j0 + r;
    const int32_t add = row_add(w, o, j, kn);
    const int32_t* a = acc + r * kNr;
    if (o.mult == nullptr) {
      int32_t* d = o.acc + j * o.ldo + p0;
      for (int64_t t = 0; t < cols; ++t) d[t] = a[t] + add;
      continue;
    }
    requantize(a, cols, add, o.mult[j], o.zo, o.out + j * o.ldo + p0, kn.requant16);
  }
}

}  // namespace

void requantize_row(const int32_t* acc, int64_t n, int32_t add, QuantMultiplier m, uint8_t zo,
                    uint8_t* out) {
  requantize(acc, n, add, m, zo, out, kernel().requant16);
}

const char* qgemm_isa() {
  return kernel().isa;
}

QuantMultiplier quant_multiplier(double real) {
  if (!(real > 0.0)) return {0, 0};
  int shift = 0;
  const double q = std::frexp(real, &shift);  // real = q * 2^shift, q in [0.5, 1)
  auto m0 = static_cast<int64_t>(std::llround(q * double(int64_t(1) << 31)));
  if (m0 == (int64_t(1) << 31)) {
    m0 /= 2;
    ++shift;
  }
  return {static_cast<int32_t>(m0), shift};
}

int32_t apply_multiplier(int32_t x, QuantMultiplier m) {
  // One 64-bit product and one rounding (half away from zero): no double rounding, so the
  // result is round(x * m0 * 2^(shift - 31)) exactly.
  const RowQuant q = row_quant(m);
  const int64_t ab = int64_t(x) * q.m0;
  const int64_t r = ab >= 0 ? (ab + q.half) >> q.total : -((-ab + q.half) >> q.total);
  if (r > std::numeric_limits<int32_t>::max()) return std::numeric_limits<int32_t>::max();
  if (r < std::numeric_limits<int32_t>::min()) return std::numeric_limits<int32_t>::min();
  return static_cast<int32_t>(r);
}

void qgemm_pack_weights(const int8_t* w, int64_t m, int64_t k, QGemmWeights* out) {
  out->m = m;
  out->k = k;
  out->quads = (k + 3) / 4;
  out->split = kernel().pairs_saturate &&
               std::any_of(w, w + m * k, [](int8_t v) { return v > 64 || v < -64; });
  const int halves = out->split ? 2 : 1;
  const int64_t blocks = (m + kMr - 1) / kMr;
  out->packed.assign(static_cast<size_t>(blocks * out->quads * halves * kMr * 4), 0);
  out->sums.assign(static_cast<size_t>(m), 0);
  for (int64_t j = 0; j < m; ++j) {
    int32_t s = 0;
    for (int64_t i = 0; i < k; ++i) s += w[j * k + i];
    out->sums[size_t(j)] = s;
  }
  for (int64_t b = 0; b < blocks; ++b) {
    for (int64_t q = 0; q < out->quads; ++q) {
      for (int h = 0; h < halves; ++h) {
        int8_t* d = out->packed.data() + ((b * out->quads + q) * halves + h) * kMr * 4;
        for (int r = 0; r < kMr; ++r) {
          const int64_t j = b * kMr + r;
          for (int i = 0; i < 4; ++i) {
            const int64_t kk = q * 4 + i;
            if (j >= m || kk >= k) continue;
            const int8_t v = w[j * k + kk];
            const auto lo = static_cast<int8_t>(v >> 1);  // floor(v / 2), in [-64, 63]
            d[r * 4 + i] = !out->split ? v : (h == 0 ? lo : static_cast<int8_t>(v - lo));
          }
        }
      }
    }
  }
}

namespace {

size_t tail_bytes(int64_t k) {
  const bool tails = kernel().panels_requant != nullptr && (k + 3) / 4 >= kTailMinQuads;
  return tails ? size_t(kQgemmTailMax) * tail_stride(k) : 0;
}

// Columns [0, cols) of a packed panel expanded for the tail kernel: per column and 4 quads q..q+3
// 64 bytes, quad q + i (4 bytes) in bytes [16 i, 16 i + 16) four times; quads past the end 0.
void expand_tail(const uint8_t* panel, int64_t quads, int cols, uint8_t* tail, size_t stride) {
  const int64_t vecs = (quads + 3) / 4;
  for (int t = 0; t < cols; ++t) {
    uint8_t* d = tail + size_t(t) * stride;
    for (int64_t q = 0; q < vecs * 4; ++q) {
      uint32_t v = 0;
      if (q < quads) std::memcpy(&v, panel + q * kNr * 4 + t * 4, 4);
      for (int r = 0; r < 4; ++r) std::memcpy(d + q * 16 + r * 4, &v, 4);
    }
  }
}

}  // namespace

size_t qgemm_scratch_bytes(int64_t k) {
  return size_t(group_panels(k)) * panel_bytes(k) + tail_bytes(k);
}

namespace {

// One panel of columns [p0, p0 + cols) of the activation operand, in pack_panel's layout.
struct PanelSource {
  const uint8_t* x = nullptr;  // explicit [k][n], row stride ldx
  int64_t ldx = 0;
  const QGemmGather* gather = nullptr;  // or implicit

  void pack(const QGemmWeights& w, int64_t p0, int64_t cols, uint8_t* panel) const {
#if defined(__x86_64__) || defined(__i386__)
    if (gather != nullptr) {
      qgemm_pack_gather_avx512vbmi(gather->base, gather->row, gather->col, w.quads, p0, cols,
                                   panel);
      return;
    }
#endif
    pack_panel(x, ldx, w.k, w.quads, p0, cols, panel);
  }
};

void qgemm_run(const QGemmWeights& w, const PanelSource& src, int64_t n, const QGemmOutput& o,
               uint8_t* scratch, int slots, ThreadPool* pool) {
  if (n <= 0 || w.m <= 0) return;
  const Kernel& kn = kernel();
  const TileFn tile = kn.tile;
  const int halves = w.split ? 2 : 1;
  const int64_t panels = (n + kNr - 1) / kNr;
  const int64_t blocks = (w.m + kMr - 1) / kMr;
  const size_t pbytes = panel_bytes(w.k);
  const int64_t group = group_panels(w.k);
  const int64_t block_bytes = w.quads * halves * kMr * 4;
  const size_t slot_bytes = qgemm_scratch_bytes(w.k), tbytes = tail_bytes(w.k);
  const size_t tstride = tail_stride(w.k);
  pool = pool_for(pool, double(w.m) * double(w.k) * double(n));
  const int64_t used = pool != nullptr ? std::min<int64_t>(std::max(1, slots), panels) : 1;
  auto body = [&](int64_t s0, int64_t s1) {
    alignas(64) int32_t acc[kMr * kNr];
    QRowQuant rq[kMr];
    for (int64_t s = s0; s < s1; ++s) {
      // The expanded tail first, then the group's panels (however many a call has).
      uint8_t* tail = scratch + size_t(s) * slot_bytes;
      uint8_t* slot = tail + tbytes;
      const int64_t end = chunk_begin(panels, int(used), int(s) + 1);
      for (int64_t g0 = chunk_begin(panels, int(used), int(s)); g0 < end; g0 += group) {
        const int64_t count = std::min(group, end - g0);
        const int64_t last_cols = std::min<int64_t>(kNr, n - (g0 + count - 1) * kNr);
        for (int64_t i = 0; i < count; ++i) {
          const int64_t p0 = (g0 + i) * kNr;
          uint8_t* panel = slot + size_t(i) * pbytes;
          src.pack(w, p0, std::min<int64_t>(kNr, n - p0), panel);
          if (kn.x_offset == 128)  // once per panel, not once per weight block
            for (size_t t = 0; t < pbytes; ++t) panel[t] ^= 0x80;
        }
        const bool tailed = tbytes != 0 && halves == 1 && last_cols <= kQgemmTailMax;
        if (tailed)
          expand_tail(slot + size_t(count - 1) * pbytes, w.quads, int(last_cols), tail, tstride);
        for (int64_t b = 0; b < blocks; ++b) {
          const int8_t* wb = w.packed.data() + b * block_bytes;
          const int64_t j0 = b * kMr, rows = std::min<int64_t>(kMr, w.m - j0);
          const bool fused = (kn.tile_requant != nullptr || kn.panels_requant != nullptr) &&
                             row_quants(w, o, j0, rows, kn, rq);
          if (fused && kn.panels_requant != nullptr) {
            kn.panels_requant(wb, slot, pbytes, count, int(last_cols), tailed ? tail : nullptr,
                              tstride, w.quads, halves, rq, int(rows), o.zo,
                              o.out + j0 * o.ldo + g0 * kNr, o.ldo);
            continue;
          }
          for (int64_t i = 0; i < count; ++i) {
            const uint8_t* panel = slot + size_t(i) * pbytes;
            const int64_t p0 = (g0 + i) * kNr, cols = std::min<int64_t>(kNr, n - p0);
            if (fused && cols == kNr) {
              kn.tile_requant(wb, panel, w.quads, halves, rq, int(rows), o.zo,
                              o.out + j0 * o.ldo + p0, o.ldo);
              continue;
            }
            tile(wb, panel, w.quads, halves, acc);
            epilogue(acc, w, o, j0, rows, p0, cols, kn);
          }
        }
      }
    }
  };
  if (pool != nullptr && used > 1)
    pool->parallel_for(used, body);
  else
    body(0, 1);
}

}  // namespace

void qgemm(const QGemmWeights& w, const uint8_t* x, int64_t ldx, int64_t n, const QGemmOutput& o,
           uint8_t* scratch, int slots, ThreadPool* pool) {
  PanelSource src;
  src.x = x;
  src.ldx = ldx;
  qgemm_run(w, src, n, o, scratch, slots, pool);
}

bool qgemm_gather_supported() {
#if defined(__x86_64__) || defined(__i386__)
  return x86_has_avx512vbmi();
#else
  return false;
#endif
}

void qgemm_gather(const QGemmWeights& w, const QGemmGather& x, int64_t n, const QGemmOutput& o,
                  uint8_t* scratch, int slots, ThreadPool* pool) {
  PanelSource src;
  src.gather = &x;
  qgemm_run(w, src, n, o, scratch, slots, pool);
}

}  // namespace kernels
}  // namespace edgepack

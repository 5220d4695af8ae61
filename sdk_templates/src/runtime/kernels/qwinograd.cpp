// SPDX-License-Identifier: Apache-2.0
// int8 Winograd F(2x2, 3x3) (qwinograd.h): filter packing, the int16 image, the portable and
// NEON GEMM micro-kernels, threading and dispatch. The transforms are in qwinograd_impl.h,
// compiled here and in qwinograd_avx2.cpp (with the AVX2 micro-kernel).
#include "runtime/kernels/qwinograd.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "runtime/kernels/cpu_isa.h"
#include "runtime/kernels/qwinograd_impl.h"
#include "runtime/kernels/threadpool.h"

#if defined(__ARM_NEON) || defined(__ARM_NEON__)
#include <arm_neon.h>
#define EDGEPACK_QWINO_NEON 1
#endif

namespace edgepack {
namespace kernels {

// Defined in qwinograd_avx2.cpp (x86 builds only, compiled with -mavx2).
void qwino_task_avx2(const QWinoTask& t);
extern const int kQWinoAvx2Mr;

namespace {

constexpr int kNr = kQWinoNr;
constexpr int kXi = 16;  // 4x4 transformed tile positions
// Bytes of transformed input per band (16 xi x pairs x band tiles x 2 int16), about L2.
constexpr int64_t kBandBytes = 256 * 1024;

// The GEMM micro-kernels: out[r][t] (mr rows x kNr tiles, int32, modulo 2^32) = sum over pairs
// p of u[p][r][0] * v[p][t][0] + u[p][r][1] * v[p][t][1]; u: [pairs][mr][2], v: pair p at
// v + p * vstride, [kNr][2].

constexpr int kGenericMr = 4;

void gemm_generic(const int16_t* u, const int16_t* v, int64_t pairs, int64_t vstride,
                  int32_t* out) {
  uint32_t s[kGenericMr][kNr] = {};  // unsigned: the sums wrap (exact modulo 2^32)
  for (int64_t p = 0; p < pairs; ++p, u += 2 * kGenericMr, v += vstride) {
    for (int r = 0; r < kGenericMr; ++r) {
      const int32_t w0 = u[2 * r], w1 = u[2 * r + 1];
      for (int t = 0; t < kNr; ++t)
        s[r][t] += static_cast<uint32_t>(w0 * v[2 * t] + w1 * v[2 * t + 1]);
    }
  }
  std::memcpy(out, s, sizeof(s));
}

#ifdef EDGEPACK_QWINO_NEON
constexpr int kNeonMr = 4;
// ARMv8.0 widening multiply-accumulate (modulo 2^32): vld2 splits a pair's 8 tiles into the two
// channels, vmlal_lane_s16 multiplies them by one weight lane. aarch64 keeps 4 rows x 16 tiles in
// 16 accumulators; armv7 (16 q registers) 4 rows x 8 tiles, twice.
#if defined(__aarch64__)
constexpr int kNeonTiles = 16;
#else
constexpr int kNeonTiles = 8;
#endif

void gemm_neon(const int16_t* u, const int16_t* v, int64_t pairs, int64_t vstride, int32_t* out) {
  constexpr int g = kNeonTiles / 4;  // int32x4 accumulators per row
  for (int t0 = 0; t0 < kNr; t0 += kNeonTiles) {
    int32x4_t a0[g], a1[g], a2[g], a3[g];
    for (int i = 0; i < g; ++i) a0[i] = a1[i] = a2[i] = a3[i] = vdupq_n_s32(0);
    const int16_t* up = u;
    const int16_t* vp = v + 2 * t0;
    for (int64_t p = 0; p < pairs; ++p, up += 2 * kNeonMr, vp += vstride) {
      const int16x8_t w = vld1q_s16(up);  // r0c0 r0c1 r1c0 r1c1 r2c0 r2c1 r3c0 r3c1
      const int16x4_t w01 = vget_low_s16(w), w23 = vget_high_s16(w);
      for (int i = 0; i < g / 2; ++i) {
        const int16x8x2_t x = vld2q_s16(vp + 16 * i);  // 8 tiles: channel 0, channel 1
        const int16x4_t c0[2] = {vget_low_s16(x.val[0]), vget_high_s16(x.val[0])};
        const int16x4_t c1[2] = {vget_low_s16(x.val[1]), vget_high_s16(x.val[1])};
        for (int h = 0; h < 2; ++h) {
          const int k = 2 * i + h;
          a0[k] = vmlal_lane_s16(vmlal_lane_s16(a0[k], c0[h], w01, 0), c1[h], w01, 1);
          a1[k] = vmlal_lane_s16(vmlal_lane_s16(a1[k], c0[h], w01, 2), c1[h], w01, 3);
          a2[k] = vmlal_lane_s16(vmlal_lane_s16(a2[k], c0[h], w23, 0), c1[h], w23, 1);
          a3[k] = vmlal_lane_s16(vmlal_lane_s16(a3[k], c0[h], w23, 2), c1[h], w23, 3);
        }
      }
    }
    for (int i = 0; i < g; ++i) {
      vst1q_s32(out + 0 * kNr + t0 + 4 * i, a0[i]);
      vst1q_s32(out + 1 * kNr + t0 + 4 * i, a1[i]);
      vst1q_s32(out + 2 * kNr + t0 + 4 * i, a2[i]);
      vst1q_s32(out + 3 * kNr + t0 + 4 * i, a3[i]);
    }
  }
}
#endif

void task_generic(const QWinoTask& t) {
  qwino_task(t, gemm_generic);
}

#ifdef EDGEPACK_QWINO_NEON
void task_neon(const QWinoTask& t) {
  qwino_task(t, gemm_neon);
}
#endif

struct Kernel {
  void (*task)(const QWinoTask& t);
  int mr;  // output channels per GEMM call (the packed filters' block)
  const char* isa;
};

// The best this CPU supports, capped by EDGEPACK_CPU_ISA (cpu_isa.h).
Kernel choose() {
  const Kernel generic = {task_generic, kGenericMr, "generic"};
  if (cpu_isa_capped_at("generic")) return generic;
#if defined(__x86_64__) || defined(__i386__)
  if (x86_isa() != X86Isa::kGeneric) return {qwino_task_avx2, kQWinoAvx2Mr, "avx2"};
#endif
#ifdef EDGEPACK_QWINO_NEON
  return {task_neon, kNeonMr, "neon"};
#else
  return generic;
#endif
}

const Kernel& kernel() {
  static const Kernel k = choose();
  return k;
}

inline int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

inline size_t align64(size_t n) {
  return (n + 63) / 64 * 64;
}

// U = G2 g G2^T of one 3x3 filter, G2 = 2G: rows [2,0,0] [1,1,1] [1,-1,1] [0,0,2].
void transform_filter(const int8_t* g, int32_t* u) {
  static constexpr int kG2[4][3] = {{2, 0, 0}, {1, 1, 1}, {1, -1, 1}, {0, 0, 2}};
  int32_t t[4][3];
  for (int i = 0; i < 4; ++i)
    for (int c = 0; c < 3; ++c) {
      int32_t s = 0;
      for (int r = 0; r < 3; ++r) s += kG2[i][r] * g[r * 3 + c];
      t[i][c] = s;
    }
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) {
      int32_t s = 0;
      for (int c = 0; c < 3; ++c) s += t[i][c] * kG2[j][c];
      u[i * 4 + j] = s;
    }
}

}  // namespace

const char* qwinograd_isa() {
  return kernel().isa;
}

bool QWinograd3x3::exact_for(const int8_t* w, int64_t out_channels, int64_t in_channels) {
  const int64_t k = in_channels * 9;
  for (int64_t j = 0; j < out_channels; ++j) {
    int64_t s = 0;
    for (int64_t i = 0; i < k; ++i) s += std::abs(int32_t(w[j * k + i]));
    if (4 * 255 * s >= (int64_t(1) << 31)) return false;
  }
  return true;
}

void QWinograd3x3::prepare(const Shape& shape, const int8_t* weights, const Quant& q, int threads) {
  s_ = shape;
  za_ = q.x_zero;
  zo_ = q.y_zero;
  mr_ = kernel().mr;
  const int64_t cin = s_.in_channels, cout = s_.out_channels;
  pairs_ = ceil_div(cin, 2);
  tiles_h_ = ceil_div(s_.out_h, 2);
  tiles_w_ = ceil_div(s_.out_w, 2);
  bias_.assign(q.bias, q.bias + cout);
  mult_.assign(q.mult, q.mult + cout);
  const int64_t blocks = ceil_div(cout, mr_);
  u_.assign(static_cast<size_t>(blocks * kXi * pairs_ * mr_ * 2), 0);
  int32_t u[kXi];
  for (int64_t j = 0; j < cout; ++j) {
    const int64_t b = j / mr_, r = j % mr_;
    for (int64_t c = 0; c < cin; ++c) {
      transform_filter(weights + (j * cin + c) * 9, u);
      for (int xi = 0; xi < kXi; ++xi)
        u_[static_cast<size_t>((((b * kXi + xi) * pairs_ + c / 2) * mr_ + r) * 2 + c % 2)] =
            static_cast<int16_t>(u[xi]);
    }
  }
  // Bands of whole panels whose V is at most kBandBytes (at least one panel).
  const int64_t panels = ceil_div(tiles_h_ * tiles_w_, kNr);
  band_ = kNr * std::max<int64_t>(1, std::min(panels, kBandBytes / (kXi * pairs_ * 4 * kNr)));
  slots_ = std::max(1, threads);
  slot_bytes_ = align64(static_cast<size_t>(kXi * pairs_ * vstride()) * sizeof(int16_t)) +
                align64(static_cast<size_t>(kXi * mr_ * kNr) * sizeof(int32_t));
  // The int16 image: rows cover every tile's 4 rows, each row's even and odd columns
  // (tiles_w + 1 each) cover every tile's 4 columns.
  padded_h_ = 2 * tiles_h_ + 2;
  half_w_ = tiles_w_ + 1;
  scratch_bytes_ = size_t(slots_) * slot_bytes_ +
                   align64(static_cast<size_t>(image_values() + kQWinoSlack) * sizeof(int16_t));
}

void QWinograd3x3::run(const uint8_t* input, uint8_t* output, uint8_t* scratch,
                       ThreadPool* pool) const {
  const Kernel& kn = kernel();
  const int64_t cin = s_.in_channels, cout = s_.out_channels, H = s_.in_h, W = s_.in_w;
  const int64_t tiles = tiles_h_ * tiles_w_;
  pool = pool_for(pool, double(cout) * double(cin) * double(tiles) * kXi);
  const int64_t slots = pool != nullptr ? std::min<int64_t>(slots_, pool->threads()) : 1;

  // The int16 image of x - za (padding 0), after the slots: [pair][row][parity][half_w][2].
  auto* img = reinterpret_cast<int16_t*>(scratch + size_t(slots_) * slot_bytes_);
  const int32_t za = za_;
  auto pad = [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const uint8_t* x0 = input + 2 * p * H * W;
      const uint8_t* x1 = 2 * p + 1 < cin ? x0 + H * W : nullptr;
      for (int64_t r = 0; r < padded_h_; ++r) {
        const int64_t iy = r - s_.pad_top;
        for (int par = 0; par < 2; ++par) {
          int16_t* d = img + ((p * padded_h_ + r) * 2 + par) * half_w_ * 2;
          if (iy < 0 || iy >= H) {
            std::memset(d, 0, static_cast<size_t>(half_w_) * 2 * sizeof(int16_t));
            continue;
          }
          // Column k of this parity is input column 2k + off: inside the row for k in [lo, hi).
          const int64_t off = par - s_.pad_left;
          const int64_t lo = std::min(half_w_, std::max<int64_t>(0, (1 - off) / 2));
          const int64_t hi = std::max(lo, std::min(half_w_, (W - off + 1) / 2));
          std::memset(d, 0, static_cast<size_t>(lo) * 2 * sizeof(int16_t));
          const uint8_t* r0 = x0 + iy * W;
          if (x1 != nullptr) {
            const uint8_t* r1 = x1 + iy * W;
            for (int64_t k = lo; k < hi; ++k) {
              d[2 * k] = static_cast<int16_t>(r0[2 * k + off] - za);
              d[2 * k + 1] = static_cast<int16_t>(r1[2 * k + off] - za);
            }
          } else {
            for (int64_t k = lo; k < hi; ++k) {
              d[2 * k] = static_cast<int16_t>(r0[2 * k + off] - za);
              d[2 * k + 1] = 0;
            }
          }
          std::memset(d + 2 * hi, 0, static_cast<size_t>(half_w_ - hi) * 2 * sizeof(int16_t));
        }
      }
    }
  };
  if (slots > 1)
    pool->parallel_for(pairs_, pad);
  else
    pad(0, pairs_);
  std::memset(img + image_values(), 0, kQWinoSlack * sizeof(int16_t));

  // Bands of equal width, as many as a multiple of the threads; few bands split over output
  // channels too (as Winograd3x3::run).
  const int64_t panels = ceil_div(tiles, kNr);
  const int64_t bands_min = ceil_div(panels, band_ / kNr);
  const int64_t target =
      bands_min >= slots ? std::min(panels, ceil_div(bands_min, slots) * slots) : bands_min;
  const int64_t bt = ceil_div(panels, target) * kNr;
  const int64_t bands = ceil_div(tiles, bt);
  int64_t parts = 1;
  if (slots > 1 && bands < 4 * slots) {
    int64_t x = bands, y = slots;
    while (y != 0) {
      const int64_t r = x % y;
      x = y;
      y = r;
    }
    parts = slots / x;
  }
  const int64_t mblocks = ceil_div(cout, mr_);
  parts = std::max<int64_t>(1, std::min(parts, mblocks));
  const int64_t part_blocks = ceil_div(mblocks, parts);
  parts = ceil_div(mblocks, part_blocks);
  const int64_t tasks = bands * parts;
  const size_t v_bytes = align64(static_cast<size_t>(kXi * pairs_ * vstride()) * sizeof(int16_t));

  QWinoTask base{};
  base.img = img;
  base.img_rows = padded_h_;
  base.half_w = half_w_;
  base.pairs = pairs_;
  base.tiles_w = tiles_w_;
  base.out_h = s_.out_h;
  base.out_w = s_.out_w;
  base.vstride = vstride();
  base.mr = mr_;
  base.out_channels = cout;
  base.u = u_.data();
  base.bias = bias_.data();
  base.mult = mult_.data();
  base.zo = zo_;
  base.out = output;
  std::atomic<int64_t> next{0};
  auto body = [&](int64_t s0, int64_t s1) {
    for (int64_t slot = s0; slot < s1; ++slot) {
      QWinoTask t = base;
      t.v = reinterpret_cast<int16_t*>(scratch + size_t(slot) * slot_bytes_);
      t.mbuf = reinterpret_cast<int32_t*>(scratch + size_t(slot) * slot_bytes_ + v_bytes);
      for (int64_t task = next++; task < tasks; task = next++) {
        t.t0 = (task / parts) * bt;
        t.nt = std::min(bt, tiles - t.t0);
        t.b0 = (task % parts) * part_blocks;
        t.b1 = std::min(mblocks, t.b0 + part_blocks);
        kn.task(t);
      }
    }
  };
  if (slots > 1)
    pool->parallel_for(slots, body);
  else
    body(0, 1);
}

}  // namespace kernels
}  // namespace edgepack

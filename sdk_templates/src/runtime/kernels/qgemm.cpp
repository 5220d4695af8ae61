// SPDX-License-Identifier: Apache-2.0
// int8 GEMM (qgemm.h): portable and NEON dot products, fixed-point requantisation, dispatch.
#include "runtime/kernels/qgemm.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

#if defined(__ARM_NEON) || defined(__ARM_NEON__)
#include <arm_neon.h>
#define EDGEPACK_QGEMM_NEON 1
#endif

namespace edgepack {
namespace kernels {

// Defined in qgemm_avx2.cpp (x86 builds only, compiled with -mavx2).
int32_t qdot_avx2(const uint8_t* a, const int8_t* w, int64_t k);

namespace {

using DotFn = int32_t (*)(const uint8_t*, const int8_t*, int64_t);

int32_t qdot_generic(const uint8_t* a, const int8_t* w, int64_t k) {
  int32_t s = 0;
  for (int64_t i = 0; i < k; ++i) s += int32_t(a[i]) * int32_t(w[i]);
  return s;
}

#ifdef EDGEPACK_QGEMM_NEON
// ARMv8.0 widening multiply-accumulate (Cortex-A53/A72/A73 have no SDOT): u8 and s8 widened to
// s16, vmlal_s16 into four int32 lanes.
int32_t qdot_neon(const uint8_t* a, const int8_t* w, int64_t k) {
  int32x4_t acc0 = vdupq_n_s32(0), acc1 = vdupq_n_s32(0);
  int64_t i = 0;
  for (; i + 16 <= k; i += 16) {
    const uint8x16_t av = vld1q_u8(a + i);
    const int8x16_t wv = vld1q_s8(w + i);
    const int16x8_t alo = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(av)));
    const int16x8_t ahi = vreinterpretq_s16_u16(vmovl_u8(vget_high_u8(av)));
    const int16x8_t wlo = vmovl_s8(vget_low_s8(wv));
    const int16x8_t whi = vmovl_s8(vget_high_s8(wv));
    acc0 = vmlal_s16(acc0, vget_low_s16(alo), vget_low_s16(wlo));
    acc1 = vmlal_s16(acc1, vget_high_s16(alo), vget_high_s16(wlo));
    acc0 = vmlal_s16(acc0, vget_low_s16(ahi), vget_low_s16(whi));
    acc1 = vmlal_s16(acc1, vget_high_s16(ahi), vget_high_s16(whi));
  }
  const int32x4_t acc = vaddq_s32(acc0, acc1);
  int32_t s = vgetq_lane_s32(acc, 0) + vgetq_lane_s32(acc, 1) + vgetq_lane_s32(acc, 2) +
              vgetq_lane_s32(acc, 3);
  return s + qdot_generic(a + i, w + i, k - i);
}
#endif

struct Kernel {
  DotFn dot;
  const char* isa;
};

Kernel choose() {
  const char* cap = std::getenv("EDGEPACK_CPU_ISA");
  const bool generic = cap != nullptr && std::strcmp(cap, "generic") == 0;
  if (generic) return {qdot_generic, "generic"};
#if defined(__x86_64__) || defined(__i386__)
  if (__builtin_cpu_supports("avx2")) return {qdot_avx2, "avx2"};
#endif
#ifdef EDGEPACK_QGEMM_NEON
  return {qdot_neon, "neon"};
#else
  return {qdot_generic, "generic"};
#endif
}

const Kernel& kernel() {
  static const Kernel k = choose();
  return k;
}

}  // namespace

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
  int total = 31 - m.shift;
  if (total > 62) total = 62;
  if (total < 1) total = 1;  // M < 2^30 in practice; kept defined for any input
  const int64_t ab = int64_t(x) * int64_t(m.m0);
  const int64_t half = int64_t(1) << (total - 1);
  const int64_t r = ab >= 0 ? (ab + half) >> total : -((-ab + half) >> total);
  if (r > std::numeric_limits<int32_t>::max()) return std::numeric_limits<int32_t>::max();
  if (r < std::numeric_limits<int32_t>::min()) return std::numeric_limits<int32_t>::min();
  return static_cast<int32_t>(r);
}

void qgemm_row_sums(const int8_t* w, int64_t n, int64_t k, int32_t* sums) {
  for (int64_t j = 0; j < n; ++j) {
    int32_t s = 0;
    for (int64_t i = 0; i < k; ++i) s += w[j * k + i];
    sums[j] = s;
  }
}

void qgemm_s32(const uint8_t* a, int64_t lda, uint8_t za, const int8_t* w, const int32_t* w_sums,
               const int32_t* bias, int64_t m, int64_t n, int64_t k, int32_t* acc) {
  const DotFn dot = kernel().dot;
  for (int64_t i = 0; i < m; ++i) {
    const uint8_t* row = a + i * lda;
    int32_t* out = acc + i * n;
    for (int64_t j = 0; j < n; ++j) {
      const int32_t d = dot(row, w + j * k, k) - int32_t(za) * w_sums[j];
      out[j] = d + (bias != nullptr ? bias[j] : 0);
    }
  }
}

void requantize_u8(const int32_t* acc, int64_t m, int64_t n, const QuantMultiplier* mult,
                   uint8_t zo, uint8_t* out, int64_t ldo) {
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      int32_t v = apply_multiplier(acc[i * n + j], mult[j]) + int32_t(zo);
      v = v < 0 ? 0 : (v > 255 ? 255 : v);
      out[i * ldo + j] = static_cast<uint8_t>(v);
    }
  }
}

}  // namespace kernels
}  // namespace edgepack

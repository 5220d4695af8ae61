// SPDX-License-Identifier: Apache-2.0
// int8 GEMM for QDQ models ([models.quantize], docs/quantization.md): uint8 activations
// (asymmetric, zero point za) times int8 weights (symmetric, per output channel), int32
// accumulation, then fixed-point requantisation to uint8.
//
//   acc[i][j] = sum_k (a[i][k] - za) * w[j][k] + bias[j]
//   out[i][j] = clamp(zo + round(acc[i][j] * M[j]), 0, 255),  M[j] = sa * sw[j] / so
//
// M is applied in fixed point: M = m0 * 2^-31 * 2^shift with m0 in [2^30, 2^31), one 64-bit
// product and one rounding shift (TFLite's doubling high multiply + shift rounds twice and is
// off by one on about 1/2^|shift| of the values). No float arithmetic on the run path.
//
// Weights are row-major [n][k] (a Conv's OIHW flattened per output channel, a Gemm's transB
// weights), so every output is a dot product of two contiguous rows. The dot product widens
// both operands to int16 and multiply-accumulates into int32 (x86 AVX2: _mm256_madd_epi16;
// NEON: vmlal_s16), which cannot saturate for k < 2^16. Kernel chosen at run time;
// EDGEPACK_CPU_ISA=generic caps it like the float GEMM (gemm.cpp).
//
// This file is the kernel only; lowering of the QDQ pattern to it is not built yet.
#pragma once

#include <cstddef>
#include <cstdint>

namespace edgepack {
namespace kernels {

// A real multiplier in (0, 1) as (m0, shift): M ~= m0 / 2^31 * 2^shift, m0 in [2^30, 2^31).
struct QuantMultiplier {
  int32_t m0;
  int shift;  // <= 0 for M < 1
};
QuantMultiplier quant_multiplier(double real);

// round(x * m0 * 2^(shift - 31)), half away from zero, saturated to int32.
int32_t apply_multiplier(int32_t x, QuantMultiplier m);

// sum_k w[j][k] for each output row j (prepare time: folds the activation zero point).
void qgemm_row_sums(const int8_t* w, int64_t n, int64_t k, int32_t* sums);

// acc (m x n, row stride n) = (a - za) * w^T + bias. a is m x k (row stride lda), w n x k
// (row stride k), w_sums from qgemm_row_sums, bias may be nullptr.
void qgemm_s32(const uint8_t* a, int64_t lda, uint8_t za, const int8_t* w, const int32_t* w_sums,
               const int32_t* bias, int64_t m, int64_t n, int64_t k, int32_t* acc);

// out (m x n, row stride ldo) = clamp(zo + acc * mult[j], 0, 255).
void requantize_u8(const int32_t* acc, int64_t m, int64_t n, const QuantMultiplier* mult,
                   uint8_t zo, uint8_t* out, int64_t ldo);

// The dot-product kernel in use: "avx2", "neon" or "generic".
const char* qgemm_isa();

}  // namespace kernels
}  // namespace edgepack

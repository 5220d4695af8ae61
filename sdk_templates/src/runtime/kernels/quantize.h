// SPDX-License-Identifier: Apache-2.0
// QuantizeLinear / DequantizeLinear inner loops (ops/quant.cpp), here so that they are built
// with the kernels' -O3 and vectorise.
#pragma once

#include <cstdint>

namespace edgepack {
namespace kernels {

// y[i] = saturate(round_half_to_even(x[i] / scale) + zero) for T in uint8/int8/uint16/int16.
template <class T>
void quantize_linear(const float* x, T* y, int64_t n, float scale, float zero);

// y[i] = (float(x[i]) - zero) * scale for T in uint8/int8/uint16/int16/int32.
template <class T>
void dequantize_linear(const T* x, float* y, int64_t n, float scale, float zero);

// y[i] = table[x[i]]: an int8 model's element-wise chain as a 256-entry table (ops/quant.cpp).
void lookup_bytes(const uint8_t* x, uint8_t* y, int64_t n, const uint8_t* table);

// y[i] = table[256 * x[i] + x2[i]]: a chain of two byte tensors as a 65536-entry table.
void lookup_byte_pairs(const uint8_t* x, const uint8_t* x2, uint8_t* y, int64_t n,
                       const uint8_t* table);

}  // namespace kernels
}  // namespace edgepack

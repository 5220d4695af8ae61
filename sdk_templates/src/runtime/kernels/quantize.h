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

// A residual DQ(a) + DQ(b) [-> Relu] -> Q computed, in float32 one operation at a time (no
// fused multiply-add, so the bytes are those of the chain run op by op, which lowering checks
// for all 65536 pairs: lower/int8_tables.py pair_formula):
//   v = (float(a[i] - zero_a) * scale_a + float(b[i] - zero_b) * scale_b) / scale_y,
//   v clamped to [lo, hi], rounded half to even, y[i] = the low byte of int(v + zero_y).
// lo / hi are the output type's bounds less zero_y (a Relu: lo at least 0). A and B are uint8_t
// or int8_t; y is the output's bytes (uint8 or int8).
struct BytePairAdd {
  float scale_a, scale_b, scale_y, zero_y, lo, hi;
  int32_t zero_a, zero_b;
};
template <class A, class B>
void add_byte_pairs(const A* a, const B* b, uint8_t* y, int64_t n, const BytePairAdd& p);

}  // namespace kernels
}  // namespace edgepack

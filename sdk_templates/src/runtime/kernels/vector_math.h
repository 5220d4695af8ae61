// SPDX-License-Identifier: Apache-2.0
// Float32 element-wise loops for ops/unary.cpp and ops/elementwise.cpp, here so that they are
// built with the kernels' -O3 and vectorise (the ops are built with -O2, where GCC vectorises
// almost nothing). Branch-free approximations: see activation.h's exp_approx.
#pragma once

#include <cstdint>

namespace edgepack {
namespace kernels {

// y = 1 / (1 + e^-x) (relative error about 3e-7).
void sigmoid_f32(const float* x, float* y, int64_t n);
// y = erf(x) (Abramowitz and Stegun 7.1.26 with exp_approx: absolute error below 2e-7).
void erf_f32(const float* x, float* y, int64_t n);

// y = softmax(x) over one contiguous row of n values (exp_approx; sums in 8 partial lanes).
void softmax_row_f32(const float* x, float* y, int64_t n);

enum class BinaryOp : int { kAdd, kSub, kMul, kDiv, kAddRelu };  // kAddRelu: max(a + b, 0)
// y[i] = a[i * sa] op b[i * sb] with strides 0 (a broadcast scalar) or 1.
void binary_f32(BinaryOp op, const float* a, int64_t sa, const float* b, int64_t sb, float* y,
                int64_t n);

}  // namespace kernels
}  // namespace edgepack

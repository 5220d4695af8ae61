// SPDX-License-Identifier: Apache-2.0
// Float32 element-wise loops for ops/unary.cpp and ops/elementwise.cpp, here so that they are
// built with the kernels' -O3 and vectorise (the ops are built with -O2, where GCC vectorises
// almost nothing). Branch-free approximations: see activation.h's exp_approx.
#pragma once

#include <cstddef>
#include <cstdint>

namespace edgepack {
class ThreadPool;
namespace kernels {

// y = 1 / (1 + e^-x) (relative error about 3e-7).
void sigmoid_f32(const float* x, float* y, int64_t n);
// y = erf(x) (Abramowitz and Stegun 7.1.26 with exp_approx: absolute error below 2e-7).
void erf_f32(const float* x, float* y, int64_t n);
// y = GELU(x) = x * Phi(x): 0.5 x (1 + erf(x / sqrt 2)), or with tanh_form ONNX Gelu's
// approximate="tanh", 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))) (absolute error below
// 1e-6 for |x| <= 10, both forms).
void gelu_f32(const float* x, float* y, int64_t n, bool tanh_form);

// y = softmax(x) over one contiguous row of n values (exp_approx; max and sum in 8 partial lanes).
void softmax_row_f32(const float* x, float* y, int64_t n);

// Softmax along a strided axis (ONNX Softmax with axis != last, e.g. YOLO's DFL): over n rows
// `stride` floats apart, for columns [0, cols) of each: y[k * stride + j] = softmax_k(x[. + j]).
// y may be x (in place). Columns are taken kSoftmaxColumns at a time (the per-column maxima and
// sums live on the stack), so callers split work across threads in multiples of it.
constexpr int64_t kSoftmaxColumns = 64;
void softmax_columns_f32(const float* x, float* y, int64_t n, int64_t stride, int64_t cols);

// LayerNormalization of one row of n values: y = (x - mean) / sqrt(var + eps) * scale + bias
// (bias may be nullptr); mean and 1 / sqrt(var + eps) are returned through mean_out / inv_out
// when not nullptr. Two passes in 16 float lanes (the mean first, then the centred squares).
void layernorm_row_f32(const float* x, float* y, int64_t n, const float* scale, const float* bias,
                       float eps, float* mean_out, float* inv_out);

// GEMV: y[j] = alpha * dot(w + j * k, x) for j in [0, n): w is n rows of k contiguous floats
// (a Gemm's transposed B, prepared once). Rows split across `pool` when it pays.
void gemv_f32(const float* w, const float* x, float* y, int64_t n, int64_t k, float alpha,
              ThreadPool* pool);

enum class BinaryOp : int { kAdd, kSub, kMul, kDiv, kAddRelu };  // kAddRelu: max(a + b, 0)
// y[i] = a[i * sa] op b[i * sb] with strides 0 (a broadcast scalar) or 1.
void binary_f32(BinaryOp op, const float* a, int64_t sa, const float* b, int64_t sb, float* y,
                int64_t n);

// Copies the strided view of `src` (shape[rank], strides in elements of elem_size bytes, any
// sign) into the contiguous `dst`: Transpose and Slice. Dimensions of size 1 are dropped and
// dimensions that stay contiguous merged, so the copy runs as memcpy of the longest contiguous
// rows; when the innermost output dimension is strided in `src` and another is contiguous, as
// tiles of a 2-D transpose. Split across `pool` (nullptr: inline) when it is large enough to pay.
// rank <= 8 (the runtime's kMaxRank); src and dst must not overlap.
void strided_copy(const void* src, const int64_t* shape, const int64_t* strides, int rank,
                  size_t elem_size, void* dst, ThreadPool* pool);

}  // namespace kernels
}  // namespace edgepack

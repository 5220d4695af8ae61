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

// Cheap element-wise activations, each exactly as the scalar expression in its comment
// (std::min / std::max order, so NaN propagates as there): ops/unary.cpp's float32 path.
enum class UnaryOp : int {
  kRelu,         // v > 0 ? v : 0
  kLeakyRelu,    // v >= 0 ? v : alpha * v
  kClip,         // std::min(std::max(v, alpha), beta)
  kHardSigmoid,  // std::min(std::max(alpha * v + beta, 0), 1)
  kHardSwish,    // v * std::min(std::max(v / 6 + 0.5, 0), 1)
  kNeg,          // -v
  kAbs,          // |v|
};
void unary_f32(UnaryOp op, const float* x, float* y, int64_t n, float alpha, float beta);

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

// LayerNorm across the channels of channels-first data, per position: for p in [p0, p1),
// y[c * plane + p] = (x[c * plane + p] - mean_p) * inv_p * scale[c] + bias[c] (bias may be
// nullptr), mean_p and inv_p = 1 / sqrt(var_p + eps) over c in [0, channels). ConvNeXt's
// LayerNorm2d (NCHW -> NHWC, LayerNorm, back) without the two transposes: vectorised along
// the positions. y may be x.
void layernorm_channels_f32(const float* x, float* y, int64_t channels, int64_t plane, int64_t p0,
                            int64_t p1, const float* scale, const float* bias, float eps);

// GEMV: y[j] = alpha * dot(w + j * k, x) for j in [0, n): w is n rows of k contiguous floats
// (a Gemm's transposed B, prepared once). Rows split across `pool` when it pays.
void gemv_f32(const float* w, const float* x, float* y, int64_t n, int64_t k, float alpha,
              ThreadPool* pool);
// GEMV the other way round: y[j] = alpha * sum_i x[i] * b[i * n + j] for j in [0, n): b is k
// rows of n contiguous floats (a Gemm's B without transB, used where it lies), read once, row by
// row (y += x[i] * row i). When it pays, each thread of `pool` takes one contiguous range of
// columns (in multiples of 16).
void gemv_rows_f32(const float* b, const float* x, float* y, int64_t k, int64_t n, float alpha,
                   ThreadPool* pool);

enum class BinaryOp : int { kAdd, kSub, kMul, kDiv, kAddRelu };  // kAddRelu: max(a + b, 0)
// y[i] = a[i * sa] op b[i * sb] with strides 0 (a broadcast scalar) or 1.
void binary_f32(BinaryOp op, const float* a, int64_t sa, const float* b, int64_t sb, float* y,
                int64_t n);
// The same over `rows` rows of n: row r reads a + r * ra and b + r * rb (element strides sa, sb
// as above) and writes y + r * n. One call for a broadcast over short rows (detector.post's
// [1500, 8] x [1500, 1]: a call per 8-float row cost more than the row).
void binary_f32_rows(BinaryOp op, const float* a, int64_t ra, int64_t sa, const float* b,
                     int64_t rb, int64_t sb, float* y, int64_t rows, int64_t n);

// Nearest-neighbour resampling of one row (ops/resize.cpp), elements of elem_size bytes (1, 2,
// 4 and 8 are moved as integers of that size, other sizes byte by byte):
// upsample_row: y[o] = x[o / factor] for o in [0, n_in * factor), factor >= 1: each element
// repeated, as vector shuffles (interleaving stores) for factors 2 to 4.
void upsample_row(const void* x, int64_t n_in, int64_t factor, void* y, size_t elem_size);
// gather_row: y[o] = x[idx[o]] for o in [0, n), any mapping.
void gather_row(const void* x, const int64_t* idx, void* y, int64_t n, size_t elem_size);

// Max pooling's separable passes (ops/pool.cpp): y[i] = max(-inf, x[i * stride + j * step] for
// j in [0, taps)) for i in [0, n), max as std::max (NaN in x is passed over, as the scalar pool
// loop does). With step = a row's width (times the dilation) it is the vertical pass over a
// padded plane, with step = the dilation the horizontal one; stride is the pool's (1 and 2 with
// 2 to 5 taps in one pass).
void max_taps_f32(const float* x, int64_t n, int taps, int64_t step, int64_t stride, float* y);

// The sum of n floats, in 8 partial lanes (GlobalAveragePool).
float sum_f32(const float* x, int64_t n);

// y[r] = sum_f32(x + r * n, n) / divisor for r in [0, rows): GlobalAveragePool, and ReduceMean /
// ReduceSum over trailing dimensions. A memory-bound loop: split over `pool` from 4096 values
// (kMemoryBoundElementWork).
void row_sums_f32(const float* x, int64_t rows, int64_t n, float divisor, float* y,
                  ThreadPool* pool);

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

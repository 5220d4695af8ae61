// SPDX-License-Identifier: Apache-2.0
#include "runtime/kernels/vector_math.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "runtime/kernels/activation.h"
#include "runtime/kernels/cpu_isa.h"
#include "runtime/kernels/microkernel.h"
#include "runtime/kernels/threadpool.h"

// The element-wise loops are EDGEPACK_VECTOR_CLONES (cpu_isa.h): AVX2 and AVX-512 versions
// picked at load time.

namespace edgepack {
namespace kernels {

namespace {

// Accumulators of a sum or dot product: 16 lanes, one AVX-512 register (two AVX2, four SSE or
// NEON registers). With 8, GCC's x86-64-v4 clone vectorised across loop iterations through
// shuffles (dot1: 163 permutes; the classifier GEMV of MobileNetV3 ran 5x slower than
// onnxruntime's on an AVX-512 Xeon).
constexpr int kReduceLanes = 16;

// Runs f(begin, end) over [0, n) on the pool, or inline when pool is nullptr.
template <class F>
void parallel(ThreadPool* pool, int64_t n, F&& f) {
  if (pool)
    pool->parallel_for(n, f);
  else
    f(int64_t{0}, n);
}

}  // namespace

namespace {

template <class F>
void map(const float* x, float* y, int64_t n, F f) {
  for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
}

inline float clamp01(float v) {
  return std::min(std::max(v, 0.0f), 1.0f);
}

}  // namespace

EDGEPACK_VECTOR_CLONES
void unary_f32(UnaryOp op, const float* x, float* y, int64_t n, float alpha, float beta) {
  switch (op) {
    case UnaryOp::kRelu:
      return map(x, y, n, [](float v) { return v > 0.0f ? v : 0.0f; });
    case UnaryOp::kLeakyRelu:
      return map(x, y, n, [alpha](float v) { return v >= 0.0f ? v : alpha * v; });
    case UnaryOp::kClip:
      return map(x, y, n, [alpha, beta](float v) { return std::min(std::max(v, alpha), beta); });
    case UnaryOp::kHardSigmoid:
      return map(x, y, n, [alpha, beta](float v) { return clamp01(alpha * v + beta); });
    case UnaryOp::kHardSwish:
      return map(x, y, n, [](float v) { return v * clamp01(v / 6.0f + 0.5f); });
    case UnaryOp::kNeg:
      return map(x, y, n, [](float v) { return -v; });
    case UnaryOp::kAbs:
      return map(x, y, n, [](float v) { return std::fabs(v); });
  }
}

EDGEPACK_VECTOR_CLONES
void sigmoid_f32(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = 1.0f / (1.0f + exp_approx(-x[i]));
}

namespace {

// erf(x): Abramowitz and Stegun 7.1.26 with exp_approx (absolute error below 2e-7); near 0,
// where that absolute error is a large relative one, the series.
inline float erf_approx(float v) {
  const float a = std::fabs(v);
  const float t = 1.0f / (1.0f + 0.3275911f * a);
  float p = 1.061405429f;
  p = p * t - 1.453152027f;
  p = p * t + 1.421413741f;
  p = p * t - 0.284496736f;
  p = p * t + 0.254829592f;
  float r = 1.0f - p * t * exp_approx(-a * a);
  r = a < 1e-2f ? a * (1.1283791671f - 0.3761263890f * a * a) : r;
  return v < 0.0f ? -r : r;
}

}  // namespace

EDGEPACK_VECTOR_CLONES
void erf_f32(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = erf_approx(x[i]);
}

EDGEPACK_VECTOR_CLONES
void gelu_f32(const float* x, float* y, int64_t n, bool tanh_form) {
  if (tanh_form) {
    // 0.5 x (1 + tanh(u)) = x (1 - 1 / (1 + e^(2u))), u = sqrt(2 / pi) (x + 0.044715 x^3).
    for (int64_t i = 0; i < n; ++i) {
      const float v = x[i];
      const float u2 = 1.5957691216f * (v + 0.044715f * v * v * v);
      y[i] = v - v / (1.0f + exp_approx(u2));
    }
    return;
  }
  // The erf form: the micro-kernel's vector GELU (VecAct::gelu), the one lowering also fuses into
  // MatMul / Conv epilogues: 0.87 ns a value on an AVX2 core (auto-vectorised here: 1.1).
  TileEpilogue te;
  te.act = TileEpilogue::kGelu;
  selected_microkernel().act_row(te, x, y, n);
}

void softmax_row_f32(const float* x, float* y, int64_t n) {
  selected_microkernel().softmax_row(x, y, n);
}

EDGEPACK_VECTOR_CLONES
void softmax_columns_f32(const float* x, float* y, int64_t n, int64_t stride, int64_t cols) {
  // Per column: the maximum over the n rows, then exp and the sum, then the scale. Each pass runs
  // along the rows' contiguous segments (vectorised over columns), kSoftmaxColumns at a time.
  for (int64_t c0 = 0; c0 < cols; c0 += kSoftmaxColumns) {
    const int64_t w = cols - c0 < kSoftmaxColumns ? cols - c0 : kSoftmaxColumns;
    float m[kSoftmaxColumns], s[kSoftmaxColumns];
    for (int64_t j = 0; j < w; ++j) m[j] = x[c0 + j];
    for (int64_t k = 1; k < n; ++k) {
      const float* xr = x + k * stride + c0;
      for (int64_t j = 0; j < w; ++j) m[j] = xr[j] > m[j] ? xr[j] : m[j];
    }
    for (int64_t j = 0; j < w; ++j) s[j] = 0.0f;
    for (int64_t k = 0; k < n; ++k) {
      const float* xr = x + k * stride + c0;
      float* yr = y + k * stride + c0;
      for (int64_t j = 0; j < w; ++j) {
        yr[j] = exp_approx(xr[j] - m[j]);
        s[j] += yr[j];
      }
    }
    for (int64_t j = 0; j < w; ++j) s[j] = 1.0f / s[j];
    for (int64_t k = 0; k < n; ++k) {
      float* yr = y + k * stride + c0;
      for (int64_t j = 0; j < w; ++j) yr[j] *= s[j];
    }
  }
}

EDGEPACK_VECTOR_CLONES
void layernorm_row_f32(const float* x, float* y, int64_t n, const float* scale, const float* bias,
                       float eps, float* mean_out, float* inv_out) {
  constexpr int kLanes = kReduceLanes;
  float acc[kLanes] = {};
  int64_t k = 0;
  for (; k + kLanes <= n; k += kLanes)
    for (int j = 0; j < kLanes; ++j) acc[j] += x[k + j];
  float sum = 0.0f;
  for (int j = 0; j < kLanes; ++j) sum += acc[j];
  for (int64_t t = k; t < n; ++t) sum += x[t];
  const float mean = sum / static_cast<float>(n);
  for (int j = 0; j < kLanes; ++j) acc[j] = 0.0f;
  for (k = 0; k + kLanes <= n; k += kLanes)
    for (int j = 0; j < kLanes; ++j) {
      const float d = x[k + j] - mean;
      acc[j] += d * d;
    }
  float sq = 0.0f;
  for (int j = 0; j < kLanes; ++j) sq += acc[j];
  for (int64_t t = k; t < n; ++t) sq += (x[t] - mean) * (x[t] - mean);
  const float inv = 1.0f / std::sqrt(sq / static_cast<float>(n) + eps);
  if (mean_out) *mean_out = mean;
  if (inv_out) *inv_out = inv;
  if (bias) {
    for (int64_t t = 0; t < n; ++t) y[t] = (x[t] - mean) * inv * scale[t] + bias[t];
  } else {
    for (int64_t t = 0; t < n; ++t) y[t] = (x[t] - mean) * inv * scale[t];
  }
}

namespace {

// layernorm_channels_f32 on up to kChannelNormBlock positions [p, p + n): the per-position
// statistics stay in small arrays while the channels stream by three times. Sums are taken
// about the first channel's value (a pivot): a large mean then costs no precision (a mean of 50
// and a spread of 0.1 lost 1e-4 otherwise).
constexpr int64_t kChannelNormBlock = 128;

EDGEPACK_VECTOR_CLONES
void layernorm_channels_block(const float* x, float* y, int64_t channels, int64_t plane, int64_t n,
                              const float* scale, const float* bias, float eps) {
  float pivot[kChannelNormBlock], mean[kChannelNormBlock], inv[kChannelNormBlock];
  for (int64_t i = 0; i < n; ++i) {
    pivot[i] = x[i];
    mean[i] = 0.0f;
  }
  for (int64_t c = 1; c < channels; ++c) {
    const float* r = x + c * plane;
    for (int64_t i = 0; i < n; ++i) mean[i] += r[i] - pivot[i];
  }
  const float scale_c = 1.0f / static_cast<float>(channels);
  for (int64_t i = 0; i < n; ++i) {
    mean[i] *= scale_c;  // the mean less the pivot
    inv[i] = 0.0f;
  }
  for (int64_t c = 0; c < channels; ++c) {
    const float* r = x + c * plane;
    for (int64_t i = 0; i < n; ++i) {
      const float d = (r[i] - pivot[i]) - mean[i];
      inv[i] += d * d;
    }
  }
  for (int64_t i = 0; i < n; ++i) inv[i] = 1.0f / std::sqrt(inv[i] * scale_c + eps);
  for (int64_t c = 0; c < channels; ++c) {
    const float* r = x + c * plane;
    float* o = y + c * plane;
    const float s = scale[c], b = bias != nullptr ? bias[c] : 0.0f;
    for (int64_t i = 0; i < n; ++i) o[i] = ((r[i] - pivot[i]) - mean[i]) * inv[i] * s + b;
  }
}

}  // namespace

void layernorm_channels_f32(const float* x, float* y, int64_t channels, int64_t plane, int64_t p0,
                            int64_t p1, const float* scale, const float* bias, float eps) {
  for (int64_t p = p0; p < p1; p += kChannelNormBlock)
    layernorm_channels_block(x + p, y + p, channels, plane, std::min(kChannelNormBlock, p1 - p),
                             scale, bias, eps);
}

namespace {

EDGEPACK_VECTOR_CLONES
float dot1(const float* w, int64_t k, const float* x) {
  constexpr int kLanes = kReduceLanes;
  float a[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= k; i += kLanes)
    for (int j = 0; j < kLanes; ++j) a[j] += w[i + j] * x[i + j];
  float s = 0.0f;
  for (int j = 0; j < kLanes; ++j) s += a[j];
  for (; i < k; ++i) s += w[i] * x[i];
  return s;
}

}  // namespace

void gemv_f32(const float* w, const float* x, float* y, int64_t n, int64_t k, float alpha,
              ThreadPool* pool) {
  parallel(pool_for(pool, static_cast<double>(n) * static_cast<double>(k)), n,
           [&](int64_t j0, int64_t j1) {
             for (int64_t j = j0; j < j1; ++j) y[j] = alpha * dot1(w + j * k, k, x);
           });
}

namespace {

// acc[t] = alpha * sum_i x[i] * b[i * ldb + t] for t in [0, w): four rows per pass over acc, so
// that acc is loaded and stored once per four rows of b.
EDGEPACK_VECTOR_CLONES
void gemv_rows_tile(const float* __restrict b, int64_t ldb, const float* __restrict x, int64_t k,
                    float* __restrict acc, int64_t w, float alpha) {
  for (int64_t t = 0; t < w; ++t) acc[t] = 0.0f;
  int64_t i = 0;
  for (; i + 4 <= k; i += 4) {
    const float x0 = x[i], x1 = x[i + 1], x2 = x[i + 2], x3 = x[i + 3];
    const float* __restrict b0 = b + i * ldb;
    const float* __restrict b1 = b0 + ldb;
    const float* __restrict b2 = b1 + ldb;
    const float* __restrict b3 = b2 + ldb;
    for (int64_t t = 0; t < w; ++t) acc[t] += x0 * b0[t] + x1 * b1[t] + x2 * b2[t] + x3 * b3[t];
  }
  for (; i < k; ++i) {
    const float xi = x[i];
    const float* __restrict bi = b + i * ldb;
    for (int64_t t = 0; t < w; ++t) acc[t] += xi * bi[t];
  }
  for (int64_t t = 0; t < w; ++t) acc[t] *= alpha;
}

// Columns per tile of gemv_rows_f32 (16 KiB of y stays in L1 across the k rows), and the unit of
// its split across threads (one 64-byte line: no two threads write the same line of y).
constexpr int64_t kRowsTile = 4096;
constexpr int64_t kRowsBlock = 16;

}  // namespace

void gemv_rows_f32(const float* b, const float* x, float* y, int64_t k, int64_t n, float alpha,
                   ThreadPool* pool) {
  // One contiguous range of columns per thread: narrower pieces would read every row of B in
  // short strided segments, which streams from memory worse than one wide pass.
  pool = pool_for(pool, static_cast<double>(n) * static_cast<double>(k));
  const int64_t blocks = (n + kRowsBlock - 1) / kRowsBlock;
  const int64_t parts = std::min<int64_t>(pool ? pool->threads() : 1, blocks);
  parallel(pool, parts, [&](int64_t p0, int64_t p1) {
    const int64_t j0 = std::min(n, blocks * p0 / parts * kRowsBlock);
    const int64_t j1 = std::min(n, blocks * p1 / parts * kRowsBlock);
    for (int64_t j = j0; j < j1; j += kRowsTile)
      gemv_rows_tile(b + j, n, x, k, y + j, std::min(kRowsTile, j1 - j), alpha);
  });
}

namespace {

template <class F>
EDGEPACK_INLINE_INTO_CLONES void loop(const float* a, int64_t sa, const float* b, int64_t sb,
                                      float* y, int64_t n, F f) {
  // Separate loops per stride pattern: each vectorises with no per-element branch.
  if (sa == 1 && sb == 1) {
    for (int64_t i = 0; i < n; ++i) y[i] = f(a[i], b[i]);
  } else if (sa == 1) {
    const float s = b[0];
    for (int64_t i = 0; i < n; ++i) y[i] = f(a[i], s);
  } else if (sb == 1) {
    const float s = a[0];
    for (int64_t i = 0; i < n; ++i) y[i] = f(s, b[i]);
  } else {
    const float v = f(a[0], b[0]);
    for (int64_t i = 0; i < n; ++i) y[i] = v;
  }
}

// The operation as a functor for `body`: one switch per call, not per row.
template <class Body>
EDGEPACK_INLINE_INTO_CLONES void with_op(BinaryOp op, Body body) {
  switch (op) {
    case BinaryOp::kAdd:
      return body([](float u, float v) { return u + v; });
    case BinaryOp::kSub:
      return body([](float u, float v) { return u - v; });
    case BinaryOp::kMul:
      return body([](float u, float v) { return u * v; });
    case BinaryOp::kDiv:
      return body([](float u, float v) { return u / v; });
    case BinaryOp::kAddRelu:
      return body([](float u, float v) {
        const float r = u + v;
        return r > 0.0f ? r : 0.0f;
      });
  }
}

}  // namespace

EDGEPACK_VECTOR_CLONES
void binary_f32(BinaryOp op, const float* a, int64_t sa, const float* b, int64_t sb, float* y,
                int64_t n) {
  with_op(op, [&](auto f) { loop(a, sa, b, sb, y, n, f); });
}

EDGEPACK_VECTOR_CLONES
void binary_f32_rows(BinaryOp op, const float* a, int64_t ra, int64_t sa, const float* b,
                     int64_t rb, int64_t sb, float* y, int64_t rows, int64_t n) {
  with_op(op, [&](auto f) {
    for (int64_t r = 0; r < rows; ++r, a += ra, b += rb, y += n) loop(a, sa, b, sb, y, n, f);
  });
}

namespace {

// Each element of x repeated F times (F fixed: the stores interleave as vector shuffles).
template <class T, int F>
void repeat_fixed(const T* x, int64_t n, T* y) {
  for (int64_t i = 0; i < n; ++i)
    for (int j = 0; j < F; ++j) y[i * F + j] = x[i];
}

template <class T>
void repeat(const T* x, int64_t n, int64_t f, T* y) {
  switch (f) {
    case 1:
      std::memcpy(y, x, static_cast<size_t>(n) * sizeof(T));
      return;
    case 2:
      return repeat_fixed<T, 2>(x, n, y);
    case 3:
      return repeat_fixed<T, 3>(x, n, y);
    case 4:
      return repeat_fixed<T, 4>(x, n, y);
    default:
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < f; ++j) y[i * f + j] = x[i];
  }
}

template <class T>
void gather(const T* x, const int64_t* idx, T* y, int64_t n) {
  for (int64_t o = 0; o < n; ++o) y[o] = x[idx[o]];
}

}  // namespace

EDGEPACK_VECTOR_CLONES
void upsample_row(const void* x, int64_t n_in, int64_t factor, void* y, size_t elem_size) {
  switch (elem_size) {
    case 1:
      return repeat(static_cast<const uint8_t*>(x), n_in, factor, static_cast<uint8_t*>(y));
    case 2:
      return repeat(static_cast<const uint16_t*>(x), n_in, factor, static_cast<uint16_t*>(y));
    case 4:
      return repeat(static_cast<const uint32_t*>(x), n_in, factor, static_cast<uint32_t*>(y));
    case 8:
      return repeat(static_cast<const uint64_t*>(x), n_in, factor, static_cast<uint64_t*>(y));
    default: {
      const uint8_t* s = static_cast<const uint8_t*>(x);
      uint8_t* d = static_cast<uint8_t*>(y);
      for (int64_t i = 0; i < n_in; ++i)
        for (int64_t j = 0; j < factor; ++j)
          std::memcpy(d + static_cast<size_t>(i * factor + j) * elem_size,
                      s + static_cast<size_t>(i) * elem_size, elem_size);
    }
  }
}

EDGEPACK_VECTOR_CLONES
void gather_row(const void* x, const int64_t* idx, void* y, int64_t n, size_t elem_size) {
  switch (elem_size) {
    case 1:
      return gather(static_cast<const uint8_t*>(x), idx, static_cast<uint8_t*>(y), n);
    case 2:
      return gather(static_cast<const uint16_t*>(x), idx, static_cast<uint16_t*>(y), n);
    case 4:
      return gather(static_cast<const uint32_t*>(x), idx, static_cast<uint32_t*>(y), n);
    case 8:
      return gather(static_cast<const uint64_t*>(x), idx, static_cast<uint64_t*>(y), n);
    default: {
      const uint8_t* s = static_cast<const uint8_t*>(x);
      uint8_t* d = static_cast<uint8_t*>(y);
      for (int64_t o = 0; o < n; ++o)
        std::memcpy(d + static_cast<size_t>(o) * elem_size,
                    s + static_cast<size_t>(idx[o]) * elem_size, elem_size);
    }
  }
}

namespace {

inline float max_nan_skip(float m, float v) {
  return m < v ? v : m;  // std::max(m, v): a NaN v leaves m
}

// All taps in one pass (TAPS and STRIDE fixed: the loop over i vectorises, the taps unrolled in
// it; a stride of 2 reads as de-interleaving loads).
template <int TAPS, int STRIDE>
void max_taps_fixed(const float* x, int64_t n, int64_t step, float* y) {
  for (int64_t i = 0; i < n; ++i) {
    const float* p = x + i * STRIDE;
    float m = max_nan_skip(-INFINITY, p[0]);
    for (int j = 1; j < TAPS; ++j) m = max_nan_skip(m, p[j * step]);
    y[i] = m;
  }
}

template <int STRIDE>
bool max_taps_stride(const float* x, int64_t n, int taps, int64_t step, float* y) {
  switch (taps) {
    case 2:
      max_taps_fixed<2, STRIDE>(x, n, step, y);
      return true;
    case 3:
      max_taps_fixed<3, STRIDE>(x, n, step, y);
      return true;
    case 4:
      max_taps_fixed<4, STRIDE>(x, n, step, y);
      return true;
    case 5:
      max_taps_fixed<5, STRIDE>(x, n, step, y);
      return true;
    default:
      return false;
  }
}

}  // namespace

EDGEPACK_VECTOR_CLONES
void max_taps_f32(const float* x, int64_t n, int taps, int64_t step, int64_t stride, float* y) {
  if (stride == 1 && max_taps_stride<1>(x, n, taps, step, y)) return;
  if (stride == 2 && max_taps_stride<2>(x, n, taps, step, y)) return;
  // Other tap counts and strides: one pass per tap (each vectorises for stride 1).
  for (int64_t i = 0; i < n; ++i) y[i] = max_nan_skip(-INFINITY, x[i * stride]);
  for (int j = 1; j < taps; ++j) {
    const float* xj = x + j * step;
    for (int64_t i = 0; i < n; ++i) y[i] = max_nan_skip(y[i], xj[i * stride]);
  }
}

EDGEPACK_VECTOR_CLONES
float sum_f32(const float* x, int64_t n) {
  constexpr int kLanes = kReduceLanes;
  float acc[kLanes] = {};
  int64_t k = 0;
  for (; k + kLanes <= n; k += kLanes)
    for (int j = 0; j < kLanes; ++j) acc[j] += x[k + j];
  float s = 0.0f;
  for (int j = 0; j < kLanes; ++j) s += acc[j];
  for (; k < n; ++k) s += x[k];
  return s;
}

void row_sums_f32(const float* x, int64_t rows, int64_t n, float divisor, float* y,
                  ThreadPool* pool) {
  parallel(pool_for(pool, kMemoryBoundElementWork * static_cast<double>(rows * n)), rows,
           [&](int64_t r0, int64_t r1) {
             for (int64_t r = r0; r < r1; ++r) y[r] = sum_f32(x + r * n, n) / divisor;
           });
}

namespace {

constexpr int kViewRank = 9;  // up to 8 dimensions, plus bytes for odd element sizes

// A strided view with unit dimensions dropped and contiguous neighbours merged.
struct View {
  int rank = 0;
  int64_t shape[kViewRank] = {};
  int64_t stride[kViewRank] = {};
};

View simplify(const int64_t* shape, const int64_t* strides, int rank) {
  View v;
  for (int d = 0; d < rank; ++d) {
    if (shape[d] == 1) continue;
    if (v.rank > 0 && v.stride[v.rank - 1] == strides[d] * shape[d]) {
      v.shape[v.rank - 1] *= shape[d];  // the previous dimension steps over this one whole
      v.stride[v.rank - 1] = strides[d];
      continue;
    }
    v.shape[v.rank] = shape[d];
    v.stride[v.rank] = strides[d];
    ++v.rank;
  }
  return v;
}

// Walks the first `nd` dimensions of a view in row-major order, tracking the source offset.
struct Odometer {
  const View& v;
  int nd;
  int64_t idx[kViewRank] = {};
  int64_t off = 0;
  Odometer(const View& view, int dims, int64_t start) : v(view), nd(dims) {
    for (int d = nd - 1; d >= 0; --d) {
      idx[d] = start % v.shape[d];
      start /= v.shape[d];
      off += idx[d] * v.stride[d];
    }
  }
  void next() {
    for (int d = nd - 1; d >= 0; --d) {
      off += v.stride[d];
      if (++idx[d] < v.shape[d]) return;
      off -= v.stride[d] * v.shape[d];
      idx[d] = 0;
    }
  }
};

// Rows of the innermost dimension gathered with a stride (no dimension is contiguous).
template <class T>
void gather_rows(const T* src, const View& v, T* dst, int64_t r0, int64_t r1) {
  const int last = v.rank - 1;
  const int64_t n = v.shape[last], s = v.stride[last];
  Odometer it(v, last, r0);
  for (int64_t r = r0; r < r1; ++r, it.next()) {
    const T* p = src + it.off;
    T* d = dst + r * n;
    for (int64_t k = 0; k < n; ++k) d[k] = p[k * s];
  }
}

// A 2-D transpose per outer index: output dimension j is contiguous in the source, the
// innermost output dimension is strided there. Items are (outer index, block of j) pairs.
constexpr int64_t kTile = 16;

template <class T>
void transpose_tiles(const T* src, const View& v, int j, T* dst, int64_t i0, int64_t i1) {
  const int last = v.rank - 1;
  const int64_t na = v.shape[j], nb = v.shape[last], sb = v.stride[last];
  const int64_t blocks = (na + kTile - 1) / kTile;
  int64_t dstride[kViewRank];
  int64_t s = 1;
  for (int d = v.rank - 1; d >= 0; --d) {
    dstride[d] = s;
    s *= v.shape[d];
  }
  const int64_t da = dstride[j];
  for (int64_t item = i0; item < i1; ++item) {
    int64_t outer = item / blocks;
    const int64_t a0 = item % blocks * kTile, a1 = a0 + kTile < na ? a0 + kTile : na;
    // Offsets of the outer index over the dimensions other than j and last.
    int64_t so = 0, dofs = 0;
    for (int d = last - 1; d >= 0; --d) {
      if (d == j) continue;
      const int64_t i = outer % v.shape[d];
      outer /= v.shape[d];
      so += i * v.stride[d];
      dofs += i * dstride[d];
    }
    for (int64_t b0 = 0; b0 < nb; b0 += kTile) {
      const int64_t b1 = b0 + kTile < nb ? b0 + kTile : nb;
      for (int64_t a = a0; a < a1; ++a) {
        const T* p = src + so + a;
        T* d = dst + dofs + a * da;
        for (int64_t b = b0; b < b1; ++b) d[b] = p[b * sb];
      }
    }
  }
}

template <class T>
void strided_copy_typed(const T* src, const View& v, T* dst, ThreadPool* pool) {
  int64_t n = 1;
  for (int d = 0; d < v.rank; ++d) n *= v.shape[d];
  const double bytes = static_cast<double>(n) * sizeof(T);
  const int last = v.rank - 1;
  if (v.stride[last] == 1) {
    // Contiguous rows: memcpy. One long row is cut into pieces so that it can be split too.
    const int64_t inner = v.shape[last];
    const int64_t rows = n / inner;
    const int64_t piece = rows == 1 ? int64_t{16384} : inner;
    const int64_t pieces_per_row = (inner + piece - 1) / piece;
    parallel(pool_for(pool, bytes / 2), rows * pieces_per_row, [&](int64_t i0, int64_t i1) {
      if (pieces_per_row > 1) {
        const int64_t b = i0 * piece, e = i1 * piece < inner ? i1 * piece : inner;
        std::memcpy(dst + b, src + b, static_cast<size_t>(e - b) * sizeof(T));
        return;
      }
      Odometer it(v, last, i0);
      for (int64_t r = i0; r < i1; ++r, it.next())
        std::memcpy(dst + r * inner, src + it.off, static_cast<size_t>(inner) * sizeof(T));
    });
    return;
  }
  int j = -1;
  for (int d = 0; d < last; ++d)
    if (v.stride[d] == 1) j = d;
  if (j >= 0) {
    const int64_t items = n / v.shape[last] / v.shape[j] * ((v.shape[j] + kTile - 1) / kTile);
    parallel(pool_for(pool, bytes), items,
             [&](int64_t i0, int64_t i1) { transpose_tiles(src, v, j, dst, i0, i1); });
    return;
  }
  parallel(pool_for(pool, bytes), n / v.shape[last],
           [&](int64_t r0, int64_t r1) { gather_rows(src, v, dst, r0, r1); });
}

}  // namespace

void strided_copy(const void* src, const int64_t* shape, const int64_t* strides, int rank,
                  size_t elem_size, void* dst, ThreadPool* pool) {
  for (int d = 0; d < rank; ++d)
    if (shape[d] == 0) return;
  View v = simplify(shape, strides, rank);
  if (v.rank == 0) {  // one element
    v.rank = 1;
    v.shape[0] = 1;
    v.stride[0] = 1;
  }
  // Contiguous rows of at most 8 bytes (MobileViT's unfold and fold: rows of 2 floats) are
  // copied as one element of that width, not one memcpy each (65536 floats: 0.133 -> 0.022 ms),
  // when every address stays aligned to it.
  const int last = v.rank - 1;
  const int64_t row_bytes = v.shape[last] * static_cast<int64_t>(elem_size);
  if (v.rank > 1 && v.stride[last] == 1 && v.shape[last] > 1 && row_bytes <= 8 &&
      (row_bytes & (row_bytes - 1)) == 0 &&
      ((reinterpret_cast<uintptr_t>(src) | reinterpret_cast<uintptr_t>(dst)) %
       static_cast<uintptr_t>(row_bytes)) == 0) {
    bool aligned = true;
    for (int d = 0; d < last; ++d) aligned = aligned && v.stride[d] % v.shape[last] == 0;
    if (aligned) {
      const int64_t inner = v.shape[last];
      for (int d = 0; d < last; ++d) v.stride[d] /= inner;
      v.rank = last;
      elem_size = static_cast<size_t>(row_bytes);
    }
  }
  switch (elem_size) {
    case 1:
      return strided_copy_typed(static_cast<const uint8_t*>(src), v, static_cast<uint8_t*>(dst),
                                pool);
    case 2:
      return strided_copy_typed(static_cast<const uint16_t*>(src), v, static_cast<uint16_t*>(dst),
                                pool);
    case 4:
      return strided_copy_typed(static_cast<const uint32_t*>(src), v, static_cast<uint32_t*>(dst),
                                pool);
    case 8:
      return strided_copy_typed(static_cast<const uint64_t*>(src), v, static_cast<uint64_t*>(dst),
                                pool);
    default: {  // other element sizes: one byte per element of a wider view
      View b = v;
      b.shape[b.rank] = static_cast<int64_t>(elem_size);
      b.stride[b.rank] = 1;
      for (int d = 0; d < b.rank; ++d) b.stride[d] *= static_cast<int64_t>(elem_size);
      ++b.rank;
      strided_copy_typed(static_cast<const uint8_t*>(src), b, static_cast<uint8_t*>(dst), pool);
    }
  }
}

}  // namespace kernels
}  // namespace edgepack

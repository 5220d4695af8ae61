// SPDX-License-Identifier: Apache-2.0
#include "runtime/kernels/vector_math.h"

#include <cmath>

#include "runtime/kernels/activation.h"

namespace edgepack {
namespace kernels {

void sigmoid_f32(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = 1.0f / (1.0f + exp_approx(-x[i]));
}

void erf_f32(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    const float a = std::fabs(v);
    const float t = 1.0f / (1.0f + 0.3275911f * a);
    float p = 1.061405429f;
    p = p * t - 1.453152027f;
    p = p * t + 1.421413741f;
    p = p * t - 0.284496736f;
    p = p * t + 0.254829592f;
    float r = 1.0f - p * t * exp_approx(-a * a);
    // Near 0 the formula's absolute error is relative error: the series instead.
    r = a < 1e-2f ? a * (1.1283791671f - 0.3761263890f * a * a) : r;
    y[i] = v < 0.0f ? -r : r;
  }
}

void softmax_row_f32(const float* x, float* y, int64_t n) {
  // Max and sum in 8 independent lanes: the loops vectorise without reassociation flags.
  constexpr int kLanes = 8;
  float m8[kLanes], s8[kLanes];
  for (int j = 0; j < kLanes; ++j) m8[j] = -INFINITY;
  int64_t k = 0;
  for (; k + kLanes <= n; k += kLanes)
    for (int j = 0; j < kLanes; ++j) m8[j] = x[k + j] > m8[j] ? x[k + j] : m8[j];
  float m = -INFINITY;
  for (int j = 0; j < kLanes; ++j) m = m8[j] > m ? m8[j] : m;
  for (int64_t t = k; t < n; ++t) m = x[t] > m ? x[t] : m;
  for (int64_t t = 0; t < n; ++t) y[t] = exp_approx(x[t] - m);
  for (int j = 0; j < kLanes; ++j) s8[j] = 0.0f;
  for (k = 0; k + kLanes <= n; k += kLanes)
    for (int j = 0; j < kLanes; ++j) s8[j] += y[k + j];
  float sum = 0.0f;
  for (int j = 0; j < kLanes; ++j) sum += s8[j];
  for (int64_t t = k; t < n; ++t) sum += y[t];
  const float inv = 1.0f / sum;
  for (int64_t t = 0; t < n; ++t) y[t] *= inv;
}

namespace {

template <class F>
void loop(const float* a, int64_t sa, const float* b, int64_t sb, float* y, int64_t n, F f) {
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

}  // namespace

void binary_f32(BinaryOp op, const float* a, int64_t sa, const float* b, int64_t sb, float* y,
                int64_t n) {
  switch (op) {
    case BinaryOp::kAdd:
      return loop(a, sa, b, sb, y, n, [](float u, float v) { return u + v; });
    case BinaryOp::kSub:
      return loop(a, sa, b, sb, y, n, [](float u, float v) { return u - v; });
    case BinaryOp::kMul:
      return loop(a, sa, b, sb, y, n, [](float u, float v) { return u * v; });
    case BinaryOp::kDiv:
      return loop(a, sa, b, sb, y, n, [](float u, float v) { return u / v; });
    case BinaryOp::kAddRelu:
      return loop(a, sa, b, sb, y, n, [](float u, float v) {
        const float r = u + v;
        return r > 0.0f ? r : 0.0f;
      });
  }
}

}  // namespace kernels
}  // namespace edgepack

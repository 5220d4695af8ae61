// SPDX-License-Identifier: Apache-2.0
// Activations the kernels fuse into their output pass (bias + activation in one sweep).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "exp_cephes.h"

namespace edgepack {
namespace kernels {

enum class Activation : int {
  kNone = 0,
  kRelu = 1,         // max(x, 0)
  kClip = 2,         // min(max(x, lo), hi); ReLU6 is Clip(0, 6)
  kHardSwish = 3,    // x * clamp(x / 6 + 0.5, 0, 1) (ONNX HardSwish)
  kHardSigmoid = 4,  // clamp(alpha * x + beta, 0, 1) (ONNX HardSigmoid)
  kSilu = 5,         // x * sigmoid(x) (SiLU / Swish: Mul(x, Sigmoid(x)) fused by lowering)
  kGelu = 6,         // x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)) (ONNX Gelu, approximate "none")
};

// What happens to each output value after the sum of products: + bias, then the activation.
struct Epilogue {
  const float* bias = nullptr;  // nullptr = no bias; not owned, must outlive the call
  bool bias_per_row = true;     // true: bias[i] for row i (Conv output channel); false: bias[j]
  Activation act = Activation::kNone;
  float clip_min = 0.0f;  // kClip only
  float clip_max = 6.0f;
  float alpha = 0.2f;  // kHardSigmoid only
  float beta = 0.5f;

  bool is_identity() const { return bias == nullptr && act == Activation::kNone; }
};

// Applies `ep` to rows [0, rows) x cols of c (row stride ldc); `row0`/`col0` locate the block in
// the full matrix so the right bias entries are used.
void apply_epilogue(const Epilogue& ep, float* c, int64_t ldc, int64_t rows, int64_t cols,
                    int64_t row0, int64_t col0);

// e^x for x in float range, branch-free (so loops over it vectorise); exp_cephes.h has the
// method and its constants.
inline float exp_approx(float x) {
  using namespace exp_cephes;
  x = x > kMin ? x : kMin;  // two plain selects: GCC if-converts them (maxss/minss)
  x = x < kMax ? x : kMax;
  const float t = x * kLog2e + kMagic;
  const float n = t - kMagic;
  const float r = x - n * kLn2Hi + n * kLn2Lo;
  float p = kE5;
  p = p * r + kE4;
  p = p * r + kE3;
  p = p * r + kE2;
  p = p * r + kE1;
  p = p * r + kE0;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

inline float silu(float x) {
  return x / (1.0f + exp_approx(-x));
}

// Scalar form, for kernels that finish one value at a time.
inline float activate(const Epilogue& ep, float x) {
  switch (ep.act) {
    case Activation::kNone:
      return x;
    case Activation::kRelu:
      return x > 0.0f ? x : 0.0f;
    case Activation::kClip:
      return x < ep.clip_min ? ep.clip_min : (x > ep.clip_max ? ep.clip_max : x);
    case Activation::kHardSwish: {
      float g = x * (1.0f / 6.0f) + 0.5f;
      g = g < 0.0f ? 0.0f : (g > 1.0f ? 1.0f : g);
      return x * g;
    }
    case Activation::kHardSigmoid: {
      const float g = ep.alpha * x + ep.beta;
      return g < 0.0f ? 0.0f : (g > 1.0f ? 1.0f : g);
    }
    case Activation::kSilu:
      return silu(x);
    case Activation::kGelu:
      return 0.5f * x * (1.0f + std::erf(x * 0.70710678118654752f));
  }
  return x;
}

}  // namespace kernels
}  // namespace edgepack

// SPDX-License-Identifier: Apache-2.0
// Activations the kernels fuse into their output pass (bias + activation in one sweep).
#pragma once

#include <cstdint>

namespace edgepack {
namespace kernels {

enum class Activation : int {
  kNone = 0,
  kRelu = 1,       // max(x, 0)
  kClip = 2,       // min(max(x, lo), hi); ReLU6 is Clip(0, 6)
  kHardSwish = 3,  // x * clamp(x / 6 + 0.5, 0, 1) (ONNX HardSwish)
};

// What happens to each output value after the sum of products: + bias, then the activation.
struct Epilogue {
  const float* bias = nullptr;  // nullptr = no bias; not owned, must outlive the call
  bool bias_per_row = true;     // true: bias[i] for row i (Conv output channel); false: bias[j]
  Activation act = Activation::kNone;
  float clip_min = 0.0f;        // kClip only
  float clip_max = 6.0f;

  bool is_identity() const { return bias == nullptr && act == Activation::kNone; }
};

// Applies `ep` to rows [0, rows) x cols of c (row stride ldc); `row0`/`col0` locate the block in
// the full matrix so the right bias entries are used.
void apply_epilogue(const Epilogue& ep, float* c, int64_t ldc, int64_t rows, int64_t cols,
                    int64_t row0, int64_t col0);

// Scalar form, for kernels that finish one value at a time.
inline float activate(const Epilogue& ep, float x) {
  switch (ep.act) {
    case Activation::kNone: return x;
    case Activation::kRelu: return x > 0.0f ? x : 0.0f;
    case Activation::kClip: return x < ep.clip_min ? ep.clip_min : (x > ep.clip_max ? ep.clip_max : x);
    case Activation::kHardSwish: {
      float g = x * (1.0f / 6.0f) + 0.5f;
      g = g < 0.0f ? 0.0f : (g > 1.0f ? 1.0f : g);
      return x * g;
    }
  }
  return x;
}

}  // namespace kernels
}  // namespace edgepack

// SPDX-License-Identifier: Apache-2.0
// 2D transposed convolution, NCHW float32: per group, col = W^T x X by the packed GEMM (weights
// packed at prepare), then col2im scatter-adds the columns into the output, then bias +
// activation. Threads split the GEMM over tiles and col2im over output channels.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "activation.h"
#include "threadpool.h"

namespace edgepack {
namespace kernels {

struct ConvTranspose2dParams {
  int64_t batch = 1;
  int64_t in_channels = 0, in_h = 0, in_w = 0;
  int64_t out_channels = 0, kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  int64_t output_padding_h = 0, output_padding_w = 0;
  int64_t groups = 1;

  int64_t out_h() const {
    return (in_h - 1) * stride_h - pad_top - pad_bottom + dilation_h * (kernel_h - 1) +
           output_padding_h + 1;
  }
  int64_t out_w() const {
    return (in_w - 1) * stride_w - pad_left - pad_right + dilation_w * (kernel_w - 1) +
           output_padding_w + 1;
  }
};

class ConvTranspose2d {
 public:
  // weights: in x out/groups x kh x kw (ONNX layout); bias: out or nullptr. Copied and packed;
  // the caller keeps ownership. Throws edgepack::Error kInvalidArgument on bad params.
  void prepare(const ConvTranspose2dParams& params, const float* weights, const float* bias,
               const Epilogue& epilogue);
  size_t scratch_bytes() const { return scratch_bytes_; }
  void run(const float* input, float* output, void* scratch, ThreadPool* pool) const;

 private:
  ConvTranspose2dParams p_;
  Epilogue ep_;
  std::vector<float> weights_;  // packed A (out_g * kh * kw x in_g) per group
  std::vector<float> bias_;
  size_t group_a_floats_ = 0;
  size_t col_floats_ = 0;
  size_t scratch_bytes_ = 0;
};

}  // namespace kernels
}  // namespace edgepack

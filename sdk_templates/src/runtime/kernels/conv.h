// SPDX-License-Identifier: Apache-2.0
// 2D convolution, NCHW float32, with bias and a fused activation.
//
// Paths, chosen at prepare():
//   depthwise 3x3 (groups == in == out channels, dilation 1, stride 1 or 2, any pads): direct,
//     one vectorised pass per output row with bias + activation applied in the same sweep;
//   every other depthwise (any kernel up to 64 taps, strides, dilations, pads): each channel's
//     plane copied once into a zero-padded buffer split by column phase (column j at phase
//     j % stride_w), so every tap of an output row is a contiguous run; one vectorised pass per
//     output row over all taps (accumulators in registers), bias + clamp in the same pass;
//   1x1, stride 1, no pads: GEMM straight on the input (no im2col);
//   3x3, stride 1, no dilation or groups, enough channels: Winograd F(4x4, 3x3), or F(2x2, 3x3)
//     on small planes (winograd.h), filters transformed at prepare;
//   everything else (any kernel, strides, dilations, asymmetric pads, groups): im2col written
//     directly in the packed-B panel layout one column block at a time, each block multiplied
//     by the weights (packed at prepare) while it is still in cache.
// Threads split the depthwise paths over channels, the pointwise path over output tiles and the
// im2col and Winograd paths over column (tile) blocks and, when the blocks are fewer than about
// four per thread or do not deal out evenly (late layers with few output pixels), over output
// channels too; a convolution with too little work for the pool (kMinParallelWork) runs on the
// calling thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "activation.h"
#include "threadpool.h"
#include "winograd.h"

namespace edgepack {
namespace kernels {

struct Conv2dParams {
  int64_t batch = 1;
  int64_t in_channels = 0, in_h = 0, in_w = 0;
  int64_t out_channels = 0, kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  int64_t groups = 1;
  // Whether prepare() may choose the Winograd path (tests and benchmarks turn it off to compare
  // it with im2col + GEMM on the same layer).
  bool allow_winograd = true;

  int64_t out_h() const {
    return (in_h + pad_top + pad_bottom - dilation_h * (kernel_h - 1) - 1) / stride_h + 1;
  }
  int64_t out_w() const {
    return (in_w + pad_left + pad_right - dilation_w * (kernel_w - 1) - 1) / stride_w + 1;
  }
};

class Conv2d {
 public:
  enum class Path { kDepthwise3x3, kPointwise, kIm2col, kDepthwise, kWinograd };

  // Validates params (throws edgepack::Error kInvalidArgument), copies and packs the weights
  // (OIHW: out x in/groups x kh x kw) and bias (out, may be nullptr). Nothing is retained from
  // the pointers: the caller keeps ownership. `epilogue.bias` is ignored (bias comes from here).
  // threads: how many threads run() will use at most (sizes the im2col scratch; run() with a
  // bigger pool still works, using this many).
  void prepare(const Conv2dParams& params, const float* weights, const float* bias,
               const Epilogue& epilogue, int threads = 1);

  // Scratch run() needs, in bytes (64-byte aligned pointer expected).
  size_t scratch_bytes() const { return scratch_bytes_; }
  Path path() const { return path_; }
  const Conv2dParams& params() const { return p_; }

  // input: batch x in x in_h x in_w; output: batch x out x out_h x out_w (must not alias input).
  // pool may be nullptr. Allocates nothing.
  void run(const float* input, float* output, void* scratch, ThreadPool* pool) const;

 private:
  void run_depthwise(const float* input, float* output, ThreadPool* pool) const;
  void run_depthwise_taps(const float* input, float* output, float* scratch,
                          ThreadPool* pool) const;

  Conv2dParams p_;
  Path path_ = Path::kIm2col;
  Epilogue ep_;
  std::vector<float> weights_;  // packed A per group (GEMM paths) or C x 9 (depthwise)
  std::vector<float> bias_;
  size_t group_a_floats_ = 0;
  int64_t slots_ = 1;         // im2col path: scratch slots, one per thread
  int64_t block_panels_ = 1;  // im2col path: B panels per column block
  size_t scratch_bytes_ = 0;
  int64_t dw_padded_h_ = 0;      // kDepthwise: rows of the padded plane
  int64_t dw_phase_cols_ = 0;    // kDepthwise: columns per phase, ceil(padded width / stride_w)
  int64_t dw_plane_floats_ = 0;  // kDepthwise: floats of one slot's padded plane (64-byte multiple)
  Winograd3x3 winograd_;         // kWinograd
};

}  // namespace kernels
}  // namespace edgepack

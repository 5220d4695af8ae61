// SPDX-License-Identifier: Apache-2.0
// 2D convolution, NCHW float32, with bias and a fused activation.
//
// Paths, chosen at prepare():
//   depthwise (groups == in == out channels) with strides > 1, output rows up to 28 wide, or
//     HardSwish / HardSigmoid / SiLU (any with 16-lane AVX-512), up to 64 taps, any dilation and
//     pads (planes up to 4 MiB per thread once interleaved): channel-blocked: blocks of L channels
//     (L = vector width) copied into one zero-padded buffer, interleaved so that a vector holds one
//     pixel of L channels (transposed in registers); every tap is then one vector FMA per output
//     pixel whatever the stride, with bias + activation in registers (microkernel.h);
//   other depthwise 3x3 (stride 1, dilation 1, any pads): direct, one vectorised pass per output
//     row with bias + clamp applied in the same sweep;
//   every other depthwise (any kernel up to 64 taps, strides, dilations, pads): each channel's
//     plane copied once into a zero-padded buffer split by column phase (column j at phase
//     j % stride_w), so every tap of an output row is a contiguous run; one vectorised pass per
//     output row over all taps (accumulators in registers), bias + clamp in the same pass;
//   few input channels (stems: 3 -> 16 / 32, 3x3 stride 2; groups 1, at most 64 taps in all):
//     direct, output channels in vectors (blocks of L) and input values broadcast from a
//     zero-padded copy of the input, no im2col; rows interleaved then transposed into NCHW;
//   1x1, stride 1, no pads: GEMM straight on the input (no im2col); with few output pixels
//     (7x7) transposed, C^T = X^T W^T (pixels on the micro-kernel's M side pad less), then C^T
//     transposed into the output;
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
  // Depthwise layers: -1 lets prepare() choose between the row paths and the channel-blocked
  // one by the plane's size; 0 / 1 force it (tests and benchmarks compare the two).
  int depthwise_blocked = -1;
  // 1x1 layers (groups 1): -1 lets prepare() choose whether to compute C^T = X^T W^T (few
  // output pixels, e.g. 7x7); 0 / 1 force it.
  int pointwise_transposed = -1;
  // Layers with few input channels (stems): -1 lets prepare() choose the direct path (output
  // channels in vectors, no im2col); 0 / 1 force it (where it applies: groups 1, at most 64
  // input channels x taps).
  int direct_oc = -1;

  int64_t out_h() const {
    return (in_h + pad_top + pad_bottom - dilation_h * (kernel_h - 1) - 1) / stride_h + 1;
  }
  int64_t out_w() const {
    return (in_w + pad_left + pad_right - dilation_w * (kernel_w - 1) - 1) / stride_w + 1;
  }
};

class Conv2d {
 public:
  enum class Path {
    kDepthwise3x3,
    kPointwise,
    kIm2col,
    kDepthwise,
    kWinograd,
    kDepthwiseBlocked,
    kPointwiseTransposed,
    kDirectOc
  };

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
  // kWinograd: the output tile (4: F(4x4, 3x3), 2: F(2x2, 3x3)); other paths: 0.
  int wino_tile() const { return path_ == Path::kWinograd ? winograd_.tile() : 0; }
  const Conv2dParams& params() const { return p_; }

  // input: batch x in x in_h x in_w; output: batch x out x out_h x out_w (must not alias input).
  // pool may be nullptr. Allocates nothing.
  void run(const float* input, float* output, void* scratch, ThreadPool* pool) const;

 private:
  void run_depthwise(const float* input, float* output, ThreadPool* pool) const;
  void run_depthwise_taps(const float* input, float* output, float* scratch,
                          ThreadPool* pool) const;
  void run_depthwise_blocked(const float* input, float* output, float* scratch,
                             ThreadPool* pool) const;
  void run_pointwise_transposed(const float* input, float* output, float* scratch,
                                ThreadPool* pool) const;
  void run_direct_oc(const float* input, float* output, float* scratch, ThreadPool* pool) const;

  Conv2dParams p_;
  Path path_ = Path::kIm2col;
  Epilogue ep_;
  // Packed A per group (GEMM paths), packed B = W^T (transposed 1x1), C x taps (depthwise row
  // paths) or taps x L per block of L channels (blocked depthwise).
  std::vector<float> weights_;
  std::vector<float> bias_;
  size_t group_a_floats_ = 0;
  int64_t slots_ = 1;         // im2col path: scratch slots, one per thread
  int64_t block_panels_ = 1;  // im2col path: B panels per column block
  size_t scratch_bytes_ = 0;
  // kDepthwise, kDepthwiseBlocked, kDirectOc: rows of the padded plane(s).
  int64_t dw_padded_h_ = 0;
  int64_t dw_phase_cols_ = 0;  // kDepthwise: columns per phase, ceil(padded width / stride_w)
  // kDepthwise: floats of one slot's padded plane; kDepthwiseBlocked: of one slot's input and
  // output blocks; kDirectOc: of one slot's output row (two channel blocks). 64-byte multiples.
  int64_t dw_plane_floats_ = 0;
  int64_t pw_ct_offset_ = 0;  // kPointwiseTransposed: where C^T starts in scratch (floats)
  int64_t dw_padded_w_ = 0;   // kDepthwiseBlocked, kDirectOc: pixels per padded row
  // kDepthwiseBlocked: floats of a slot's input block; kDirectOc: of the padded input planes.
  int64_t dw_in_floats_ = 0;
  // kDepthwiseBlocked, kDirectOc: bias per block of L channels.
  std::vector<float> dw_block_bias_;
  Winograd3x3 winograd_;  // kWinograd
};

}  // namespace kernels
}  // namespace edgepack

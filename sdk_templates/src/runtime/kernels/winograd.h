// SPDX-License-Identifier: Apache-2.0
// 3x3 stride-1 convolution (no groups, no dilation, any pads) by Winograd's minimal filtering,
// F(m x m, 3x3) with m = 4 (6x6 transformed tiles, 4x fewer multiplies than direct) or m = 2
// (4x4 tiles, 2.25x; for small planes, where 4x4 output tiles would be mostly padding).
//
// The filters are transformed once at prepare (U = G g G^T, in double) and packed as the A
// operands of a + a GEMMs (a = m + 2), one per tile position xi: U_xi is out x in channels.
// run() copies the input once into a zero-padded image (every tile whole, no bounds checks), then
// works on blocks of output tiles, each in one task while it is in cache: the input tiles
// of the block are transformed (V = B^T d B, tiles side by side in the lanes: 16 with AVX-512, 8
// with AVX2 + FMA, 4 with SSE or NEON; winograd_transforms.h) straight into the packed-B layout
// of gemm.h, each xi is multiplied by the GEMM micro-kernel of this CPU (M_xi = U_xi V_xi), and
// the output transform (Y = A^T M A) adds the bias, applies the activation and writes the m x m
// output tiles. Threads take blocks, and when blocks are few (late layers) blocks split over
// output channels too (each part transforms its block's input again: cin * a^2 work against the
// GEMM's cin * rows * a^2).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "activation.h"
#include "threadpool.h"

namespace edgepack {
namespace kernels {

class Winograd3x3 {
 public:
  struct Shape {
    int64_t in_channels = 0, out_channels = 0, in_h = 0, in_w = 0, out_h = 0, out_w = 0;
    int64_t pad_top = 0, pad_left = 0;
  };

  // weights: OIHW, out x in x 3 x 3 (not retained). tile: 2 or 4. threads: scratch slots.
  void prepare(const Shape& shape, const float* weights, int tile, int threads);
  int tile() const { return m_; }
  // Scratch run() needs, in floats (64-byte aligned pointer expected).
  size_t scratch_floats() const { return scratch_floats_; }
  // One image: input in x in_h x in_w, output out x out_h x out_w. ep: bias per output channel
  // (bias_per_row) and the activation. pool may be nullptr. Allocates nothing.
  void run(const float* input, float* output, const Epilogue& ep, float* scratch,
           ThreadPool* pool) const;

 private:
  Shape s_;
  int m_ = 4, a_ = 6;
  int64_t tiles_h_ = 0, tiles_w_ = 0;
  int64_t block_ = 0;  // tiles per block (a multiple of NR)
  int64_t slots_ = 1;
  size_t a_floats_ = 0;                  // packed U_xi floats
  size_t slot_floats_ = 0;               // per slot: V (a^2 x in x block) + M (a^2 x out x block)
  int64_t padded_h_ = 0, padded_w_ = 0;  // the zero-padded input image
  size_t scratch_floats_ = 0;
  std::vector<float> u_;  // a^2 packed A operands
};

}  // namespace kernels
}  // namespace edgepack

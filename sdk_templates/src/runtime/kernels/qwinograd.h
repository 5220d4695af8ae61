// SPDX-License-Identifier: Apache-2.0
// int8 3x3 stride-1 convolution (QLinearConv, group 1, no dilation) by Winograd F(2x2, 3x3),
// exact: the bytes of the im2col + qgemm path (qgemm.h), with 2.25x fewer multiplies.
//
// Everything is integer. With G2 = 2G (rows [2,0,0] [1,1,1] [1,-1,1] [0,0,2]) the filter
// transform U = G2 g G2^T has integer entries, |U| <= 9 * 127 = 1143; the input transform
// V = B^T (x - za) B of a 4x4 tile (padding: za, i.e. 0 after the subtraction) has |V| <= 4 * 255
// = 1020. Both fit int16, so the 16 GEMMs M_xi = U_xi V_xi (one per tile position xi, output x
// input channels times input channels x tiles) run as int16 x int16 -> int32 multiply-adds:
// vpmaddwd on channel pairs (AVX2), vmlal_s16 (NEON), a portable loop. A^T M A is then 4x the
// direct convolution's sum; all of it is computed modulo 2^32 (wrapping int32 adds; uint32 in
// portable code), which is exact because the true 4x sum fits in int32 (checked per output
// channel at prepare: 4 * 255 * sum |w| < 2^31), and the division by 4 is exact. The sum plus the
// bias is requantised by requantize_row() (qgemm.h): the same int32 value as the im2col path's,
// the same bytes.
//
// Layout: the input is copied once per image into an int16 image of x - za with the padding,
// channel pairs interleaved (the two int16 of one 32-bit lane of vpmaddwd) and each row split
// into even and odd columns, so that the input transform of a row of tiles is element-wise
// vector arithmetic on contiguous data. Tiles are taken in bands (V of a band ~256 KiB, in L2);
// within a band, for each panel of 16 tiles and each block of output channels (the micro-kernel's
// rows), the 16 GEMMs write a small int32 buffer that the output transform reads from L1.
// Threads take (band, output-channel part) tasks, as the float Winograd (winograd.h) does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "runtime/kernels/qgemm.h"

namespace edgepack {
class ThreadPool;
namespace kernels {

constexpr int kQWinoNr = 16;  // tiles per GEMM panel
// int16 values of slack after each row of transformed input and after the int16 image: the
// input transform reads and writes whole vectors (qwinograd_impl.h), up to 32 bytes past a row.
constexpr int64_t kQWinoSlack = 32;

class QWinograd3x3 {
 public:
  struct Shape {
    int64_t in_channels = 0, out_channels = 0, in_h = 0, in_w = 0, out_h = 0, out_w = 0;
    int64_t pad_top = 0, pad_left = 0;
  };
  struct Quant {
    uint8_t x_zero = 0, y_zero = 0;
    const int32_t* bias = nullptr;          // out_channels values (copied)
    const QuantMultiplier* mult = nullptr;  // out_channels values (copied)
  };

  // Whether the result is exact for these weights (OIHW, out x in x 3 x 3): 4 * 255 * sum |w| of
  // every output channel below 2^31.
  static bool exact_for(const int8_t* w, int64_t out_channels, int64_t in_channels);

  // weights: OIHW int8 (not retained). threads: scratch slots. Allocates.
  void prepare(const Shape& shape, const int8_t* weights, const Quant& q, int threads);
  // Scratch run() needs, in bytes (64-byte aligned pointer expected).
  size_t scratch_bytes() const { return scratch_bytes_; }
  // One image: input in x in_h x in_w uint8, output out x out_h x out_w uint8. pool may be
  // nullptr. Allocates nothing.
  void run(const uint8_t* input, uint8_t* output, uint8_t* scratch, ThreadPool* pool) const;

 private:
  Shape s_;
  uint8_t za_ = 0, zo_ = 0;
  int mr_ = 4;  // output channels per GEMM micro-kernel call (the ISA's kernel)
  int64_t pairs_ = 0, tiles_h_ = 0, tiles_w_ = 0, band_ = 0, slots_ = 1;
  int64_t padded_h_ = 0, half_w_ = 0;  // the int16 image: rows, and columns per parity
  size_t slot_bytes_ = 0, scratch_bytes_ = 0;
  int64_t vstride() const { return band_ * 2 + kQWinoSlack; }  // a pair's row of V, in int16
  int64_t image_values() const { return pairs_ * padded_h_ * 2 * half_w_ * 2; }
  std::vector<int16_t> u_;  // [block of mr][xi][pair][mr][2]
  std::vector<int32_t> bias_;
  std::vector<QuantMultiplier> mult_;
};

// The GEMM micro-kernel in use: "avx2", "neon" or "generic".
const char* qwinograd_isa();

}  // namespace kernels
}  // namespace edgepack

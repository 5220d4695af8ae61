// SPDX-License-Identifier: Apache-2.0
// int8 depthwise convolution (QLinearConv with group = channels, one filter per channel): one
// channel plane at a time, uint8 input with zero point za, int8 filter, int32 accumulation and
// the fixed-point requantisation of qgemm.h. The plane is first copied, minus za, into an int16
// buffer that includes the padding (zeros: real 0), so the tap loops have no bounds checks and
// vectorise; the int32 sums of the whole plane are requantised in one pass. On AVX-512 VNNI,
// kernels up to 4 columns wide (3x3) with stride_w 1 or 2 run on a uint8 copy instead
// (padding = za), four taps per vpdpbusd lane (qdepthwise_avx512vnni.cpp); the same bytes.
#pragma once

#include <cstddef>
#include <cstdint>

#include "runtime/kernels/qgemm.h"

namespace edgepack {
namespace kernels {

constexpr int64_t kQDepthwiseMaxTaps = 64;  // kh * kw at most

struct QDepthwiseParams {  // field names as kernels::Conv2dParams (ops/conv_attrs.h set_window)
  int64_t in_h = 0, in_w = 0;
  int64_t out_h = 0, out_w = 0;
  int64_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1;
  int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;  // bottom/right: unused
};

// Scratch bytes one call of qdepthwise_plane() needs (one per thread).
size_t qdepthwise_scratch_bytes(const QDepthwiseParams& p);

// out (out_h x out_w) = clamp(zo + round((sum_taps w * (in - za) + bias) * mult), 0, 255).
// in: one in_h x in_w plane; w: kernel_h x kernel_w taps; scratch: qdepthwise_scratch_bytes(p),
// 64-byte aligned.
void qdepthwise_plane(const QDepthwiseParams& p, const uint8_t* in, uint8_t za, const int8_t* w,
                      int32_t bias, QuantMultiplier mult, uint8_t zo, uint8_t* out, void* scratch);

}  // namespace kernels
}  // namespace edgepack

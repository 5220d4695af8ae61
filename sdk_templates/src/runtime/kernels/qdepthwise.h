// SPDX-License-Identifier: Apache-2.0
// int8 depthwise convolution (QLinearConv with group = channels, one filter per channel): one
// channel plane at a time, uint8 input with zero point za, int8 filter, int32 accumulation and
// the fixed-point requantisation of qgemm.h. The plane is first copied, minus za, into an int16
// buffer that includes the padding (zeros: real 0), so the tap loops have no bounds checks and
// vectorise; the int32 sums of the whole plane are requantised in one pass.
#pragma once

#include <cstddef>
#include <cstdint>

#include "runtime/kernels/qgemm.h"

namespace edgepack {
namespace kernels {

constexpr int64_t kQDepthwiseMaxTaps = 64;  // kh * kw at most

struct QDepthwiseParams {
  int64_t h = 0, w = 0;    // input plane
  int64_t oh = 0, ow = 0;  // output plane
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1;
  int64_t pt = 0, pl = 0;  // top and left padding (bottom and right follow from oh, ow)
};

// Scratch bytes one call of qdepthwise_plane() needs (one per thread).
size_t qdepthwise_scratch_bytes(const QDepthwiseParams& p);

// out (oh x ow) = clamp(zo + round((sum_taps w * (in - za) + bias) * mult), 0, 255).
// in: one h x w plane; w: kh x kw taps; scratch: qdepthwise_scratch_bytes(p), 64-byte aligned.
void qdepthwise_plane(const QDepthwiseParams& p, const uint8_t* in, uint8_t za, const int8_t* w,
                      int32_t bias, QuantMultiplier mult, uint8_t zo, uint8_t* out, void* scratch);

}  // namespace kernels
}  // namespace edgepack

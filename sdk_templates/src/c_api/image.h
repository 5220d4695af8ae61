// SPDX-License-Identifier: Apache-2.0
// Camera frames into a pipeline's image input: NV12 / NV21 (BT.601 limited range, what video
// pipelines such as the Hi3559A VPSS deliver), packed RGB / BGR / RGBA / BGRA and gray, each
// plane with its own row stride, converted to the channel order the input declares (the
// preprocess `pixel_format`: rgb, bgr or gray), HWC uint8.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace edgepack::capi {

enum class PixelFormat {
  kRgb = 1,
  kBgr = 2,
  kGray = 3,
  kNv12 = 4,
  kNv21 = 5,
  kRgba = 6,
  kBgra = 7
};

struct Frame {
  PixelFormat format;
  int32_t width, height;
  const uint8_t* planes[2];  // NV12/NV21: Y, then interleaved chroma; otherwise one plane
  size_t strides[2];         // bytes per row of each plane
};

// "rgb", "bgr" or "gray": the order the destination wants.
// Throws Error(kInvalidArgument) with a message naming the problem (odd NV12 size, a stride
// smaller than a row, a NULL plane).
void convert_frame(const Frame& src, const std::string& dst_order, uint8_t* dst);

// The channels of one destination pixel for `dst_order` (3, or 1 for gray).
int channels_of(const std::string& dst_order);

}  // namespace edgepack::capi

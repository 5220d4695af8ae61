// SPDX-License-Identifier: Apache-2.0
#include "c_api/image.h"

#include <algorithm>

#include "c_api/status.h"

namespace edgepack::capi {
namespace {

inline uint8_t clamp8(int v) {
  return static_cast<uint8_t>(std::min(255, std::max(0, v)));
}

// BT.601 limited range (16..235 luma), integer form with 8 fractional bits.
inline void yuv_to_rgb(int y, int u, int v, uint8_t* rgb) {
  const int c = 298 * (y - 16) + 128, d = u - 128, e = v - 128;
  rgb[0] = clamp8((c + 409 * e) >> 8);
  rgb[1] = clamp8((c - 100 * d - 208 * e) >> 8);
  rgb[2] = clamp8((c + 516 * d) >> 8);
}

// ITU-R BT.601 luma weights, 8 fractional bits.
inline uint8_t gray_of(const uint8_t* rgb) {
  return static_cast<uint8_t>((77 * rgb[0] + 150 * rgb[1] + 29 * rgb[2] + 128) >> 8);
}

void put(const uint8_t* rgb, const std::string& order, uint8_t* out) {
  if (order == "rgb") {
    out[0] = rgb[0], out[1] = rgb[1], out[2] = rgb[2];
  } else if (order == "bgr") {
    out[0] = rgb[2], out[1] = rgb[1], out[2] = rgb[0];
  } else {
    out[0] = gray_of(rgb);
  }
}

int source_bpp(PixelFormat f) {
  switch (f) {
    case PixelFormat::kRgb:
    case PixelFormat::kBgr:
      return 3;
    case PixelFormat::kRgba:
    case PixelFormat::kBgra:
      return 4;
    default:
      return 1;
  }
}

}  // namespace

int channels_of(const std::string& dst_order) {
  return dst_order == "gray" ? 1 : 3;
}

void convert_frame(const Frame& src, const std::string& order, uint8_t* dst) {
  if (order != "rgb" && order != "bgr" && order != "gray")
    invalid_argument("image input pixel_format '" + order + "' is not rgb, bgr or gray");
  const bool yuv = src.format == PixelFormat::kNv12 || src.format == PixelFormat::kNv21;
  const size_t w = static_cast<size_t>(src.width), h = static_cast<size_t>(src.height);
  if (src.planes[0] == nullptr) invalid_argument("image.planes[0] is NULL");
  if (src.strides[0] < w * static_cast<size_t>(source_bpp(src.format)))
    invalid_argument("image.strides[0] " + std::to_string(src.strides[0]) +
                     " is smaller than one row (" +
                     std::to_string(w * static_cast<size_t>(source_bpp(src.format))) + " bytes)");
  if (yuv) {
    if (src.width % 2 != 0 || src.height % 2 != 0)
      invalid_argument("NV12/NV21 frames need an even width and height");
    if (src.planes[1] == nullptr) invalid_argument("image.planes[1] (chroma) is NULL");
    if (src.strides[1] < w) invalid_argument("image.strides[1] is smaller than one chroma row");
  }
  const int c = channels_of(order);
  uint8_t rgb[3] = {0, 0, 0};
  for (size_t y = 0; y < h; ++y) {
    const uint8_t* row = src.planes[0] + y * src.strides[0];
    const uint8_t* uv = yuv ? src.planes[1] + (y / 2) * src.strides[1] : nullptr;
    uint8_t* out = dst + y * w * static_cast<size_t>(c);
    for (size_t x = 0; x < w; ++x, out += c) {
      switch (src.format) {
        case PixelFormat::kNv12:
          yuv_to_rgb(row[x], uv[x & ~size_t{1}], uv[(x & ~size_t{1}) + 1], rgb);
          break;
        case PixelFormat::kNv21:
          yuv_to_rgb(row[x], uv[(x & ~size_t{1}) + 1], uv[x & ~size_t{1}], rgb);
          break;
        case PixelFormat::kRgb:
        case PixelFormat::kRgba: {
          const uint8_t* p = row + x * static_cast<size_t>(source_bpp(src.format));
          rgb[0] = p[0], rgb[1] = p[1], rgb[2] = p[2];
          break;
        }
        case PixelFormat::kBgr:
        case PixelFormat::kBgra: {
          const uint8_t* p = row + x * static_cast<size_t>(source_bpp(src.format));
          rgb[0] = p[2], rgb[1] = p[1], rgb[2] = p[0];
          break;
        }
        case PixelFormat::kGray:
          if (c == 1) {
            out[0] = row[x];
            continue;
          }
          rgb[0] = rgb[1] = rgb[2] = row[x];
          break;
      }
      put(rgb, order, out);
    }
  }
}

}  // namespace edgepack::capi

// SPDX-License-Identifier: Apache-2.0
#include "runtime/frame_input.h"

#include <cstring>

namespace edgepack {
namespace {

[[noreturn]] void bad(const std::string& path, const std::string& why) {
  throw Error(ErrorCode::kInvalidArgument, "manifest: " + path + ": " + why);
}

std::vector<int64_t> read_size(const json::Value& v, const std::string& path) {
  std::vector<int64_t> out;
  for (const auto& d : v.as_array(path)) out.push_back(d.as_int(path + "[]"));
  if (out.size() != 2 || out[0] < 1 || out[1] < 1)
    bad(path, "expected [height, width] of positive integers");
  return out;
}

}  // namespace

void parse_size_bounds(const json::Value& v, const std::string& path, TensorInfo& t) {
  const json::Value* low = v.find("size_min");
  const json::Value* high = v.find("size_max");
  if (low == nullptr && high == nullptr) return;
  if (low == nullptr || high == nullptr) bad(path, "size_min and size_max come together");
  t.size_min = read_size(*low, path + ".size_min");
  t.size_max = read_size(*high, path + ".size_max");
  if (t.shape.size() != 3) bad(path, "size bounds need an HWC shape");
  for (size_t d = 0; d < 2; ++d)
    if (t.size_min[d] > t.shape[d] || t.shape[d] > t.size_max[d])
      bad(path, "shape outside size_min..size_max");
}

std::vector<int64_t> frame_capacity(const TensorInfo& t) {
  std::vector<int64_t> shape = t.shape;
  if (!t.size_max.empty()) shape[0] = t.size_max[0], shape[1] = t.size_max[1];
  return shape;
}

bool frame_shape_ok(const TensorInfo& t, const std::vector<int64_t>& shape) {
  if (shape.size() != t.shape.size()) return false;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] < 0) return false;
    if (d < 2 && !t.size_max.empty()) {
      if (shape[d] < t.size_min[d] || shape[d] > t.size_max[d]) return false;
    } else if (d == 0 && t.dynamic_dim0) {
      if (shape[d] > t.shape[d]) return false;
    } else if (shape[d] != t.shape[d]) {
      return false;
    }
  }
  return true;
}

std::string bounds_text(const TensorInfo& t) {
  if (t.size_max.empty()) return "";
  return " (height " + std::to_string(t.size_min[0]) + ".." + std::to_string(t.size_max[0]) +
         ", width " + std::to_string(t.size_min[1]) + ".." + std::to_string(t.size_max[1]) + ")";
}

void place_frame(const uint8_t* src, int64_t height, int64_t width, size_t pixel_bytes,
                 uint8_t* dst, int64_t dst_height, int64_t dst_width) {
  const size_t row = static_cast<size_t>(width) * pixel_bytes;
  const size_t dst_row = static_cast<size_t>(dst_width) * pixel_bytes;
  const bool extra_column = width < dst_width;
  for (int64_t y = 0; y < height; ++y) {
    uint8_t* out = dst + static_cast<size_t>(y) * dst_row;
    std::memcpy(out, src + static_cast<size_t>(y) * row, row);
    if (extra_column) std::memcpy(out + row, out + row - pixel_bytes, pixel_bytes);
  }
  if (height > 0 && height < dst_height) {
    uint8_t* out = dst + static_cast<size_t>(height) * dst_row;
    std::memcpy(out, out - dst_row, row + (extra_column ? pixel_bytes : 0));
  }
}

}  // namespace edgepack

// SPDX-License-Identifier: Apache-2.0
// Image inputs whose size the app chooses per run (manifest `size_min` / `size_max` on a
// pipeline input, docs/manifest.md): the stage graphs read a buffer of the largest size with the
// frame top-left, plus the frame's [height, width] as the int64 tensor `<input>#size`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/json.h"
#include "runtime/runtime.h"

namespace edgepack {

// The tensor reference suffix of a bounded input's actual [height, width] ("image#size").
constexpr char kFrameSizeSuffix[] = "#size";

// Reads `size_min` / `size_max` of a tensor description into `t` (both or neither; each
// [height, width] of positive integers, min <= the declared shape's dims 0 and 1 <= max, rank 3).
// Throws Error(kInvalidArgument, "manifest: <path>...").
void parse_size_bounds(const json::Value& v, const std::string& path, TensorInfo& t);

// The shape a bounded input's buffer needs: dims 0 and 1 at their maximum (else `t.shape`).
std::vector<int64_t> frame_capacity(const TensorInfo& t);

// Whether `shape` fits `t`: the declared shape, or for a bounded input any height and width
// within the bounds (other dims as declared). Rank mismatch is false.
bool frame_shape_ok(const TensorInfo& t, const std::vector<int64_t>& shape);

// " (height 240..1080, width 320..1920)" for a bounded input, "" otherwise: appended to the
// expected shape in messages.
std::string bounds_text(const TensorInfo& t);

// Copies an HWC frame of `height` x `width` pixels (`pixel_bytes` each, rows packed) into the
// top-left of `dst`, a buffer of `dst_height` x `dst_width` pixels, and repeats the frame's last
// column and row once past its edge (a RoiAlign crop at the border then reads the border, as on a
// buffer of the frame's own size). Other bytes of `dst` are left as they are. Never allocates.
// The host reference does the same (packager/edgepack/model/frame_size.py place_frame).
void place_frame(const uint8_t* src, int64_t height, int64_t width, size_t pixel_bytes,
                 uint8_t* dst, int64_t dst_height, int64_t dst_width);

}  // namespace edgepack

// SPDX-License-Identifier: Apache-2.0
// .npy files (format 1.0 / 2.0, little-endian, C order) for the runner's inputs and outputs.
// Only the dtypes of the C API: float32 ('<f4'), uint8 ('|u1'), int32 ('<i4'), int64 ('<i8').
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "edgepack.h"

namespace edgepack_run {

struct NpyArray {
  ep_dtype dtype = EP_DTYPE_FLOAT32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;
};

// Throws NpyError with a message naming the file.
struct NpyError {
  std::string message;
};

NpyArray read_npy(const std::string& path);
// Writes `path` atomically (temp file in the same folder, then rename).
void write_npy(const std::string& path, ep_dtype dtype, const std::vector<int64_t>& shape,
               const void* data, size_t bytes);

const char* dtype_name(ep_dtype dtype);
size_t dtype_size(ep_dtype dtype);

}  // namespace edgepack_run

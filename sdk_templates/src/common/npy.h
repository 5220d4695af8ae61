// SPDX-License-Identifier: Apache-2.0
// Minimal .npy reader/writer (format 1.0/2.0 read, 1.0 written; little-endian, C order) for the
// dtypes the SDK uses: float32 (<f4), uint8 (|u1), int32 (<i4), int64 (<i8), bool (|b1).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace edgepack {
namespace npy {

struct Array {
  std::string descr;  // "<f4", "|u1", "<i4", "<i8", "|b1"
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;  // raw little-endian bytes, C order
};

// Throws edgepack::Error (kIoError for files, kInvalidArgument for malformed content).
Array parse(const uint8_t* bytes, size_t size, const std::string& what);
Array load(const std::string& path);
std::vector<uint8_t> serialize(const Array& a);
// Writes with write_file_atomic (common/atomic_file.h): never half-written.
void save(const std::string& path, const Array& a);

// dtype name ("float32", ...) <-> descr
std::string descr_for(const std::string& dtype);
std::string dtype_for(const std::string& descr);  // "" when unknown
size_t item_size(const std::string& descr);

}  // namespace npy
}  // namespace edgepack

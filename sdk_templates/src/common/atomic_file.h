// SPDX-License-Identifier: Apache-2.0
// The one way the SDK and its tools write a file: a reader sees the old file or the new one,
// never a part, and after a power cut the file is one of the two.
#pragma once

#include <cstddef>
#include <string>

namespace edgepack {

// Writes `size` bytes from `data` (borrowed for the call) to `path`: a temporary file in the same
// folder (`path` + ".tmp"), fsync, rename over `path`, fsync of the folder. Throws
// edgepack::Error(kIoError) naming the file that failed; the temporary file is removed then.
void write_file_atomic(const std::string& path, const void* data, size_t size);
inline void write_file_atomic(const std::string& path, const std::string& text) {
  write_file_atomic(path, text.data(), text.size());
}

}  // namespace edgepack

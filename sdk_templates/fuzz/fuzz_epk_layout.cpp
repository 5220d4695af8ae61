// SPDX-License-Identifier: Apache-2.0
// Step 1 of the reader (layout) on arbitrary bytes: either a header or ArtifactInvalid.
#include <cstddef>
#include <cstdint>

#include "artifact/header.h"
#include "common/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const edgepack::epk::Header h = edgepack::epk::parse_layout(data, size);
    // A header that passed must describe sections inside the file.
    for (const auto& s : h.sections) {
      if (s.offset + s.ciphertext_size > size) __builtin_trap();
    }
  } catch (const edgepack::ArtifactInvalid&) {
  }
  return 0;
}

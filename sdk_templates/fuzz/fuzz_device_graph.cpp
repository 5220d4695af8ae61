// SPDX-License-Identifier: Apache-2.0
// The runtime's device graph loader on arbitrary (already "authenticated") bytes: it must
// verify every offset and index and fail with edgepack::Error, never crash.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/error.h"
#include "runtime/graph.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Copy into an exactly sized heap buffer so that ASan sees any overread.
  std::vector<uint8_t> bytes(data, data + size);
  try {
    auto g = edgepack::load_graph(bytes.data(), bytes.size());
  } catch (const edgepack::Error&) {
  }
  return 0;
}

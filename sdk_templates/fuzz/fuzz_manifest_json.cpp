// SPDX-License-Identifier: Apache-2.0
// The manifest JSON parser on arbitrary text: a value or edgepack::Error, never a crash.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/error.h"
#include "common/json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    edgepack::json::parse(std::string(reinterpret_cast<const char*>(data), size));
  } catch (const edgepack::Error&) {
  }
  return 0;
}

// SPDX-License-Identifier: Apache-2.0
// The whole reader (layout, signature, counter, unseal, chunk decryption) on arbitrary bytes with
// a fixed key set: either an Artifact or ArtifactInvalid, nothing else.
#include <cstddef>
#include <cstdint>

#include "artifact/artifact.h"
#include "fuzz_keys.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const edgepack::DeviceKey device = edgepack::fuzz::device_key();
  static const edgepack::PublisherKey publisher = edgepack::fuzz::publisher_key();
  try {
    auto a = edgepack::Artifact::open(data, size, device, publisher);
    size_t n = 0;
    a->section("manifest", &n);
  } catch (const edgepack::ArtifactInvalid&) {
  }
  return 0;
}

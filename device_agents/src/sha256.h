// SPDX-License-Identifier: Apache-2.0
// SHA-256 (FIPS 180-4), self-contained so the agent links against libc only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace epagent {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t len);
  // Writes 32 bytes; the object must not be used afterwards.
  void finish(uint8_t out[32]);
  // Lower-case hex of the digest.
  std::string hex();

 private:
  void block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

std::string sha256_hex(const void* data, size_t len);
// Hex digest of a file's bytes; returns false when it cannot be read.
bool sha256_file(const std::string& path, std::string* hex_out);

}  // namespace epagent

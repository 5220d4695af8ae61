// SPDX-License-Identifier: Apache-2.0
// Framing of the agent protocol (PROTOCOL.md section 1): COBS, 0x00 delimiters, CRC-32.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "protocol_table.h"

namespace epagent {

constexpr size_t kHeaderSize = 12;
constexpr size_t kFrameOverhead = kHeaderSize + 4;
constexpr size_t kMaxFrame =
    size_t(kMaxPayload) + kFrameOverhead + (size_t(kMaxPayload) + kFrameOverhead) / 254 + 2;

uint32_t crc32(const uint8_t* data, size_t len, uint32_t crc = 0);
std::vector<uint8_t> cobs_encode(const uint8_t* data, size_t len);
// Returns false on malformed input.
bool cobs_decode(const uint8_t* data, size_t len, std::vector<uint8_t>* out);

struct Frame {
  uint8_t type = 0;
  uint8_t flags = 0;
  uint32_t seq = 0;
  std::vector<uint8_t> payload;
};

// Wire bytes: 0x00 COBS(header | payload | crc32) 0x00.
std::vector<uint8_t> encode_frame(const Frame& f);

// Checks one COBS-decoded candidate; on failure *why names the check that failed.
bool parse_frame(const std::vector<uint8_t>& raw, Frame* out, std::string* why);

// Incremental receiver. Feed bytes; whenever a delimiter completes a candidate, the callback
// gets either a parsed frame or a rejection (candidate length and reason).
class FrameDecoder {
 public:
  enum class Event { kFrame, kDropped, kOversize };
  struct Result {
    Event event;
    Frame frame;
    size_t candidate_len;
    std::string why;
  };
  // Appends completed results to *out.
  void feed(const uint8_t* data, size_t len, std::vector<Result>* out);

 private:
  std::vector<uint8_t> buf_;
  bool skipping_ = false;
  size_t skipped_ = 0;
};

}  // namespace epagent

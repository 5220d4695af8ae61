// SPDX-License-Identifier: Apache-2.0
// Generated from packager/edgepack/device/protocol.py by
// `python -m edgepack.device.protocol_header --write`: edit the table, not this file.
// Message ids and limits of the agent protocol (PROTOCOL.md sections 2 and 5).
#pragma once

#include <cstdint>

namespace epagent {

constexpr uint8_t kMagic = 0xE9;
constexpr uint8_t kProtocolVersion = 1;

enum MsgType : uint8_t {
  kHello = 0x01,
  kPutBegin = 0x02,
  kHave = 0x03,
  kPutChunk = 0x04,
  kPutEnd = 0x05,
  kInstall = 0x06,
  kRun = 0x07,
  kResult = 0x08,
  kLog = 0x09,
  kGet = 0x0A,
  kOk = 0x0B,
  kError = 0x0C,
  kPing = 0x0D,
  kPong = 0x0E,
  kBye = 0x0F,
  kKeygen = 0x10,
  kBaud = 0x11,
  kHash = 0x12,
  kPutRecipe = 0x13,
};

// bytes of one frame's payload
constexpr int64_t kMaxPayload = 262144;
// bytes of one PUT_CHUNK and of one GET reply
constexpr int64_t kMaxChunk = 131072;
// chunks of one upload (the HAVE bitmap stays <= 128 KiB)
constexpr int64_t kMaxChunks = 1048576;
// bytes RUN hands to a program on stdin (PIPE_BUF)
constexpr int64_t kMaxStdin = 4096;
// RUN output kept per stream when max_output is absent
constexpr int64_t kDefaultOutput = 1048576;
// largest RUN max_output (bytes per stream)
constexpr int64_t kMaxOutput = 16777216;
// largest RUN timeout_ms (7 days)
constexpr int64_t kMaxTimeoutMs = 604800000;
// SIGTERM to SIGKILL when a RUN times out
constexpr int64_t kKillGraceMs = 2000;
// how long output pipes may stay open after the program exits
constexpr int64_t kOrphanGraceMs = 500;
// RUN env entries
constexpr int64_t kMaxEnv = 4096;
// RUN argv entries
constexpr int64_t kMaxArgv = 4096;
// bytes of a path in a request
constexpr int64_t kMaxPath = 4095;
// an abandoned upload older than this is deleted (7 days)
constexpr int64_t kPartialMaxAgeS = 604800;
// ranges of one HASH request (the reply holds 32 bytes each)
constexpr int64_t kMaxRanges = 4096;
// copy ops of one PUT_RECIPE (24 bytes each in the request)
constexpr int64_t kMaxCopies = 8192;
// BAUD: the wait after the OK drained, before the tty switches
constexpr int64_t kBaudSettleMs = 50;
// BAUD: back to the old rate without a valid frame at the new
constexpr int64_t kBaudConfirmMs = 3000;
// BAUD: how long after the switch garbage still reverts it
constexpr int64_t kBaudProbationMs = 10000;

}  // namespace epagent

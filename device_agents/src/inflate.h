// SPDX-License-Identifier: Apache-2.0
// A small raw DEFLATE (RFC 1951) decoder for compressed PUT_CHUNK data (PROTOCOL.md section 7):
// the host compresses each chunk with zlib, the agent inflates it before storing it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace epagent {

// Decodes the raw DEFLATE stream `in` (no zlib or gzip header) into `out` (replaced). Fails on
// malformed data, on a stream that runs past `in`, and when the output would exceed `max_out`.
bool inflate_raw(const uint8_t* in, size_t in_len, size_t max_out, std::vector<uint8_t>* out);

}  // namespace epagent

// SPDX-License-Identifier: Apache-2.0
// X25519 (RFC 7748) for on-device key generation: the device key is created on the board and
// its private half never leaves it (docs/keys.md).
#pragma once

#include <cstdint>

namespace epagent {

// out = scalar * point (u-coordinates, 32 bytes little-endian; the scalar is clamped).
void x25519(uint8_t out[32], const uint8_t scalar[32], const uint8_t point[32]);
// out = scalar * 9 (the public key of a private scalar).
void x25519_base(uint8_t out[32], const uint8_t scalar[32]);

}  // namespace epagent

// SPDX-License-Identifier: Apache-2.0
// HPKE (RFC 9180) base mode, receiver side only, for DHKEM(X25519, HKDF-SHA256) with
// HKDF-SHA256 and AES-GCM. OpenSSL 3.0 has no HPKE API, so it is composed here from X25519,
// HKDF and AES-GCM following RFC 9180 sections 4 and 5.1. The AEAD is a parameter (Nk) so that
// the RFC's own test vectors (appendix A.1 uses AES-128-GCM) check this code; edgepack itself
// uses AES-256-GCM.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

typedef struct evp_pkey_st EVP_PKEY;

namespace edgepack::hpke {

struct Suite {
  uint16_t kem_id;   // 0x0020: DHKEM(X25519, HKDF-SHA256), the only KEM implemented
  uint16_t kdf_id;   // 0x0001: HKDF-SHA256, the only KDF implemented
  uint16_t aead_id;  // 0x0001: AES-128-GCM, 0x0002: AES-256-GCM
  size_t nk;         // AEAD key length: 16 or 32
};

constexpr Suite kAes128Suite{0x0020, 0x0001, 0x0001, 16};    // RFC 9180 appendix A.1
constexpr Suite kEdgepackSuite{0x0020, 0x0001, 0x0002, 32};  // docs/artifact-format.md

constexpr size_t kNenc = 32;
constexpr size_t kNsecret = 32;
constexpr size_t kNn = 12;

// The key schedule's outputs (and the intermediate values the RFC's vectors list).
// The destructor wipes every field.
struct KeySchedule {
  std::vector<uint8_t> context;  // key_schedule_context: mode || psk_id_hash || info_hash
  uint8_t secret[32] = {};
  uint8_t key[32] = {};  // first suite.nk bytes used
  uint8_t base_nonce[kNn] = {};
  KeySchedule() = default;
  KeySchedule(const KeySchedule&) = delete;
  KeySchedule& operator=(const KeySchedule&) = delete;
  ~KeySchedule();
};

// Decap: shared_secret from the receiver's X25519 private key and the sender's `enc`.
bool decap(EVP_PKEY* receiver_private, const uint8_t enc[kNenc], uint8_t shared_secret[kNsecret]);

// KeySchedule for mode_base (empty psk and psk_id).
bool key_schedule(const Suite& suite, const uint8_t shared_secret[kNsecret], const uint8_t* info,
                  size_t info_len, KeySchedule* out);

// SetupBaseR + the context's first Open (sequence number 0, nonce = base_nonce).
// Writes ct_len - 16 bytes to `pt`; returns false on any failure (nothing is kept on failure).
bool open_base_first(const Suite& suite, EVP_PKEY* receiver_private, const uint8_t enc[kNenc],
                     const uint8_t* info, size_t info_len, const uint8_t* aad, size_t aad_len,
                     const uint8_t* ct, size_t ct_len, uint8_t* pt);

}  // namespace edgepack::hpke

// SPDX-License-Identifier: Apache-2.0
// Thin wrappers over OpenSSL 3.0 libcrypto (EVP) for the primitives the artifact format uses:
// SHA-256, HKDF-SHA256 (extract / expand separately, as HPKE needs), AES-GCM open, X25519 and
// Ed25519 verify. They return false on any failure (including authentication failures) and
// never throw; callers turn a false into the one opaque ArtifactInvalid with a reason code.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

typedef struct evp_pkey_st EVP_PKEY;
typedef struct evp_cipher_ctx_st EVP_CIPHER_CTX;

namespace edgepack::crypto {

constexpr size_t kSha256Size = 32;
constexpr size_t kGcmNonceSize = 12;
constexpr size_t kGcmTagSize = 16;

// Fixed-size secret that is wiped (OPENSSL_cleanse) when it goes out of scope.
template <size_t N>
struct Secret {
  std::array<uint8_t, N> bytes{};
  Secret() = default;
  Secret(const Secret&) = delete;
  Secret& operator=(const Secret&) = delete;
  ~Secret();
  uint8_t* data() { return bytes.data(); }
  const uint8_t* data() const { return bytes.data(); }
  static constexpr size_t size() { return N; }
};

// Wipes `size` bytes at `p` in a way the compiler cannot elide.
void wipe(void* p, size_t size);

template <size_t N>
Secret<N>::~Secret() {
  wipe(bytes.data(), N);
}

bool sha256(const uint8_t* data, size_t size, uint8_t out[kSha256Size]);

// HKDF-Extract (RFC 5869) with SHA-256; an empty salt means HashLen zero bytes.
bool hkdf_extract(const uint8_t* salt, size_t salt_len, const uint8_t* ikm, size_t ikm_len,
                  uint8_t prk[kSha256Size]);
// HKDF-Expand with SHA-256; out_len <= 255 * 32.
bool hkdf_expand(const uint8_t* prk, size_t prk_len, const uint8_t* info, size_t info_len,
                 uint8_t* out, size_t out_len);

// One-shot AES-GCM open (key of 16 or 32 bytes). `ct` ends with the 16-byte tag; writes
// ct_len - 16 bytes to `out` (which may be wiped by the caller on failure).
bool aes_gcm_open(const uint8_t* key, size_t key_len, const uint8_t nonce[kGcmNonceSize],
                  const uint8_t* aad, size_t aad_len, const uint8_t* ct, size_t ct_len,
                  uint8_t* out);

// AES-256-GCM with one key and many nonces (the chunk stream of one section): the key schedule
// is set up once, each open() only resets the nonce.
class GcmStreamOpener {
 public:
  GcmStreamOpener();
  ~GcmStreamOpener();
  GcmStreamOpener(const GcmStreamOpener&) = delete;
  GcmStreamOpener& operator=(const GcmStreamOpener&) = delete;

  bool set_key(const uint8_t key[32]);
  bool open(const uint8_t nonce[kGcmNonceSize], const uint8_t* aad, size_t aad_len,
            const uint8_t* ct, size_t ct_len, uint8_t* out);

 private:
  EVP_CIPHER_CTX* ctx_ = nullptr;
  bool keyed_ = false;
};

// X25519(sk, peer): the 32-byte shared secret; fails for an all-zero result.
bool x25519(EVP_PKEY* private_key, const uint8_t peer_public[32], uint8_t out[32]);

// Pure Ed25519 (RFC 8032) verification of a 64-byte signature.
bool ed25519_verify(EVP_PKEY* public_key, const uint8_t* msg, size_t msg_len,
                    const uint8_t signature[64]);

}  // namespace edgepack::crypto

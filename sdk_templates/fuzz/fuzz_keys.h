// SPDX-License-Identifier: Apache-2.0
// The fixed key set of the fuzz targets. tests/sdk/test_fuzz.py derives the same keys from the
// same raw bytes to sign and seal the seed artifacts, so the fuzzer starts past the signature.
#pragma once

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstdint>
#include <string>

#include "artifact/keys.h"

namespace edgepack::fuzz {

// Device X25519 private key: bytes 0x01..0x20. Publisher Ed25519 seed: 32 x 0x42.
inline DeviceKey device_key() {
  uint8_t raw[32];
  for (int i = 0; i < 32; ++i) raw[i] = static_cast<uint8_t>(i + 1);
  return DeviceKey::from_raw(raw, sizeof(raw));
}

inline PublisherKey publisher_key() {
  uint8_t seed[32];
  for (uint8_t& b : seed) b = 0x42;
  EVP_PKEY* priv = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed, sizeof(seed));
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, priv);
  char* pem = nullptr;
  const long len = BIO_get_mem_data(bio, &pem);
  PublisherKey key = PublisherKey::from_pem(pem, static_cast<size_t>(len));
  BIO_free(bio);
  EVP_PKEY_free(priv);
  return key;
}

}  // namespace edgepack::fuzz

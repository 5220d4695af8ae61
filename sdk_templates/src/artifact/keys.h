// SPDX-License-Identifier: Apache-2.0
// The two keys an app hands the reader: its own X25519 private key (the device or fleet key
// the artifact is sealed to) and the publisher's Ed25519 public key (what signatures are checked
// against). Key files are PEM (PKCS#8 / SubjectPublicKeyInfo), as docs/artifact-format.md says;
// the device key may also come as its raw 32 bytes, e.g. from a secure element or a vault.
//
// A file that cannot be read is Error(kIoError) (kNotFound when it does not exist); bytes that
// are not a key of the right kind are Error(kInvalidArgument). Neither is ArtifactInvalid: the
// artifact has not been looked at yet.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

typedef struct evp_pkey_st EVP_PKEY;

namespace edgepack {

class OwnedKey {
 public:
  OwnedKey() = default;
  explicit OwnedKey(EVP_PKEY* key) : key_(key) {}
  OwnedKey(OwnedKey&& other) noexcept : key_(other.key_) { other.key_ = nullptr; }
  OwnedKey& operator=(OwnedKey&& other) noexcept;
  OwnedKey(const OwnedKey&) = delete;
  OwnedKey& operator=(const OwnedKey&) = delete;
  ~OwnedKey();
  EVP_PKEY* get() const { return key_; }

 private:
  EVP_PKEY* key_ = nullptr;
};

class DeviceKey {
 public:
  static DeviceKey from_pem_file(const std::string& path);
  static DeviceKey from_pem(const void* pem, size_t size, const std::string& what = "device key");
  static DeviceKey from_raw(const void* raw, size_t size);

  EVP_PKEY* pkey() const { return key_.get(); }
  const std::array<uint8_t, 32>& public_raw() const { return public_raw_; }
  // SHA-256 of the raw public key: the recipient stanza's key_id.
  const std::array<uint8_t, 32>& key_id() const { return key_id_; }

 private:
  explicit DeviceKey(OwnedKey key);
  OwnedKey key_;
  std::array<uint8_t, 32> public_raw_{};
  std::array<uint8_t, 32> key_id_{};
};

class PublisherKey {
 public:
  static PublisherKey from_pem_file(const std::string& path);
  static PublisherKey from_pem(const void* pem, size_t size,
                               const std::string& what = "publisher key");

  EVP_PKEY* pkey() const { return key_.get(); }
  const std::array<uint8_t, 32>& raw() const { return raw_; }

 private:
  explicit PublisherKey(OwnedKey key);
  OwnedKey key_;
  std::array<uint8_t, 32> raw_{};
};

// Reads a whole file (keys, artifacts). Error(kNotFound) / Error(kIoError) name the file.
std::string read_whole_file(const std::string& path, const std::string& what);

}  // namespace edgepack

// SPDX-License-Identifier: Apache-2.0
#include "artifact/keys.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>

#include "artifact/crypto.h"
#include "common/error.h"

namespace edgepack {
namespace {

// Never prompt on a terminal for a passphrase: edgepack key files are unencrypted.
int no_passphrase(char*, int, int, void*) {
  return -1;
}

// The PEM text may hold a private key: wipe our copy once parsed.
struct WipedString {
  std::string s;
  ~WipedString() { crypto::wipe(&s[0], s.size()); }
};

EVP_PKEY* parse_pem(const void* pem, size_t size, bool private_key) {
  if (pem == nullptr || size == 0 || size > static_cast<size_t>(std::numeric_limits<int>::max())) {
    return nullptr;
  }
  BIO* bio = BIO_new_mem_buf(pem, static_cast<int>(size));
  if (bio == nullptr) return nullptr;
  EVP_PKEY* key = private_key ? PEM_read_bio_PrivateKey(bio, nullptr, no_passphrase, nullptr)
                              : PEM_read_bio_PUBKEY(bio, nullptr, no_passphrase, nullptr);
  BIO_free(bio);
  ERR_clear_error();
  return key;
}

}  // namespace

OwnedKey& OwnedKey::operator=(OwnedKey&& other) noexcept {
  if (this != &other) {
    EVP_PKEY_free(key_);
    key_ = other.key_;
    other.key_ = nullptr;
  }
  return *this;
}

OwnedKey::~OwnedKey() {
  EVP_PKEY_free(key_);
}

std::string read_whole_file(const std::string& path, const std::string& what) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    const int err = errno;
    throw Error(err == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIoError,
                what + " '" + path + "': " + std::strerror(err));
  }
  // A regular file is read straight into a buffer of its size: one allocation, no copies
  // (a 100 MB artifact otherwise peaks at 2x while the string doubles, and a key's bytes are
  // left behind in freed memory). Whatever follows (a file that grew, a pipe) is appended.
  std::string data;
  struct stat st {};
  if (::fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
    data.resize(static_cast<size_t>(st.st_size));
    data.resize(std::fread(&data[0], 1, data.size(), f));
  }
  char buf[1 << 16];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) data.append(buf, n);
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  crypto::wipe(buf, sizeof(buf));
  if (failed) throw Error(ErrorCode::kIoError, what + " '" + path + "': read error");
  return data;
}

DeviceKey::DeviceKey(OwnedKey key) : key_(std::move(key)) {
  size_t len = public_raw_.size();
  if (EVP_PKEY_get_raw_public_key(key_.get(), public_raw_.data(), &len) != 1 || len != 32 ||
      !crypto::sha256(public_raw_.data(), public_raw_.size(), key_id_.data())) {
    ERR_clear_error();
    throw Error(ErrorCode::kInvalidArgument, "device key: cannot derive its public key");
  }
}

DeviceKey DeviceKey::from_pem_file(const std::string& path) {
  WipedString pem{read_whole_file(path, "device key")};
  return from_pem(pem.s.data(), pem.s.size(), "device key '" + path + "'");
}

DeviceKey DeviceKey::from_pem(const void* pem, size_t size, const std::string& what) {
  OwnedKey key(parse_pem(pem, size, /*private_key=*/true));
  if (key.get() == nullptr || EVP_PKEY_get_id(key.get()) != EVP_PKEY_X25519) {
    throw Error(ErrorCode::kInvalidArgument,
                what + ": not an X25519 private key (PEM, BEGIN PRIVATE KEY)");
  }
  return DeviceKey(std::move(key));
}

DeviceKey DeviceKey::from_raw(const void* raw, size_t size) {
  if (raw == nullptr || size != 32) {
    throw Error(ErrorCode::kInvalidArgument, "device key: a raw X25519 key is exactly 32 bytes");
  }
  OwnedKey key(EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr,
                                            static_cast<const uint8_t*>(raw), size));
  if (key.get() == nullptr) {
    ERR_clear_error();
    throw Error(ErrorCode::kInvalidArgument, "device key: not a valid raw X25519 key");
  }
  return DeviceKey(std::move(key));
}

PublisherKey::PublisherKey(OwnedKey key) : key_(std::move(key)) {
  size_t len = raw_.size();
  if (EVP_PKEY_get_raw_public_key(key_.get(), raw_.data(), &len) != 1 || len != 32) {
    ERR_clear_error();
    throw Error(ErrorCode::kInvalidArgument, "publisher key: cannot read its raw bytes");
  }
}

PublisherKey PublisherKey::from_pem_file(const std::string& path) {
  const std::string pem = read_whole_file(path, "publisher key");
  return from_pem(pem.data(), pem.size(), "publisher key '" + path + "'");
}

PublisherKey PublisherKey::from_pem(const void* pem, size_t size, const std::string& what) {
  OwnedKey key(parse_pem(pem, size, /*private_key=*/false));
  if (key.get() == nullptr || EVP_PKEY_get_id(key.get()) != EVP_PKEY_ED25519) {
    throw Error(ErrorCode::kInvalidArgument,
                what + ": not an Ed25519 public key (PEM, BEGIN PUBLIC KEY)");
  }
  return PublisherKey(std::move(key));
}

}  // namespace edgepack

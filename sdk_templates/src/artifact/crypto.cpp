// SPDX-License-Identifier: Apache-2.0
#include "artifact/crypto.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <climits>
#include <memory>

namespace edgepack::crypto {
namespace {

// Failures leave entries in OpenSSL's per-thread error queue; drop them so that they neither
// leak into later, unrelated calls nor grow without bound in a long-running app.
bool fail() {
  ERR_clear_error();
  return false;
}

struct KdfCtxFree {
  void operator()(EVP_KDF_CTX* c) const { EVP_KDF_CTX_free(c); }
};
using KdfCtx = std::unique_ptr<EVP_KDF_CTX, KdfCtxFree>;

KdfCtx new_hkdf_ctx() {
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  if (kdf == nullptr) return nullptr;
  KdfCtx ctx(EVP_KDF_CTX_new(kdf));
  EVP_KDF_free(kdf);
  return ctx;
}

char kSha256Name[] = "SHA256";

}  // namespace

void wipe(void* p, size_t size) {
  if (p != nullptr && size > 0) OPENSSL_cleanse(p, size);
}

bool sha256(const uint8_t* data, size_t size, uint8_t out[kSha256Size]) {
  unsigned int len = 0;
  static const uint8_t kEmpty = 0;
  if (EVP_Digest(size ? data : &kEmpty, size, out, &len, EVP_sha256(), nullptr) != 1 ||
      len != kSha256Size) {
    return fail();
  }
  return true;
}

bool hkdf_extract(const uint8_t* salt, size_t salt_len, const uint8_t* ikm, size_t ikm_len,
                  uint8_t prk[kSha256Size]) {
  // OpenSSL's HKDF refuses an empty key; HPKE's labeled inputs and edgepack's content key are
  // never empty, so this only guards misuse.
  if (ikm_len == 0) return fail();
  KdfCtx ctx = new_hkdf_ctx();
  if (!ctx) return fail();
  int mode = EVP_KDF_HKDF_MODE_EXTRACT_ONLY;
  OSSL_PARAM params[5];
  size_t n = 0;
  params[n++] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
  params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, kSha256Name, 0);
  params[n++] =
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(ikm), ikm_len);
  // RFC 5869: a missing salt is HashLen zeros, which is also what HMAC does with an empty key;
  // so an empty salt is simply not passed.
  if (salt_len > 0) {
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<uint8_t*>(salt),
                                                    salt_len);
  }
  params[n] = OSSL_PARAM_construct_end();
  if (EVP_KDF_derive(ctx.get(), prk, kSha256Size, params) != 1) return fail();
  return true;
}

bool hkdf_expand(const uint8_t* prk, size_t prk_len, const uint8_t* info, size_t info_len,
                 uint8_t* out, size_t out_len) {
  if (prk_len == 0 || out_len == 0 || out_len > 255 * kSha256Size) return fail();
  KdfCtx ctx = new_hkdf_ctx();
  if (!ctx) return fail();
  int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
  static uint8_t kNoInfo = 0;
  OSSL_PARAM params[5];
  size_t n = 0;
  params[n++] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
  params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, kSha256Name, 0);
  params[n++] =
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(prk), prk_len);
  params[n++] = OSSL_PARAM_construct_octet_string(
      OSSL_KDF_PARAM_INFO, info_len ? const_cast<uint8_t*>(info) : &kNoInfo, info_len);
  params[n] = OSSL_PARAM_construct_end();
  if (EVP_KDF_derive(ctx.get(), out, out_len, params) != 1) return fail();
  return true;
}

namespace {

bool gcm_open_with(EVP_CIPHER_CTX* ctx, const uint8_t nonce[kGcmNonceSize], const uint8_t* aad,
                   size_t aad_len, const uint8_t* ct, size_t ct_len, uint8_t* out) {
  if (ct_len < kGcmTagSize) return false;
  const size_t body = ct_len - kGcmTagSize;
  if (body > static_cast<size_t>(INT_MAX) || aad_len > static_cast<size_t>(INT_MAX)) return false;
  if (EVP_DecryptInit_ex(ctx, nullptr, nullptr, nullptr, nonce) != 1) return false;
  int len = 0;
  if (aad_len > 0 && EVP_DecryptUpdate(ctx, nullptr, &len, aad, static_cast<int>(aad_len)) != 1) {
    return false;
  }
  if (body > 0 && EVP_DecryptUpdate(ctx, out, &len, ct, static_cast<int>(body)) != 1) {
    return false;
  }
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, static_cast<int>(kGcmTagSize),
                          const_cast<uint8_t*>(ct + body)) != 1) {
    return false;
  }
  uint8_t final_block[16];
  return EVP_DecryptFinal_ex(ctx, final_block, &len) == 1;
}

}  // namespace

bool aes_gcm_open(const uint8_t* key, size_t key_len, const uint8_t nonce[kGcmNonceSize],
                  const uint8_t* aad, size_t aad_len, const uint8_t* ct, size_t ct_len,
                  uint8_t* out) {
  const EVP_CIPHER* cipher = key_len == 16   ? EVP_aes_128_gcm()
                             : key_len == 32 ? EVP_aes_256_gcm()
                                             : nullptr;
  if (cipher == nullptr) return fail();
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  if (ctx == nullptr) return fail();
  bool ok = EVP_DecryptInit_ex(ctx, cipher, nullptr, key, nullptr) == 1 &&
            gcm_open_with(ctx, nonce, aad, aad_len, ct, ct_len, out);
  EVP_CIPHER_CTX_free(ctx);  // also wipes the expanded key schedule
  return ok ? true : fail();
}

GcmStreamOpener::GcmStreamOpener() : ctx_(EVP_CIPHER_CTX_new()) {}

GcmStreamOpener::~GcmStreamOpener() {
  EVP_CIPHER_CTX_free(ctx_);
}

bool GcmStreamOpener::set_key(const uint8_t key[32]) {
  keyed_ =
      ctx_ != nullptr && EVP_DecryptInit_ex(ctx_, EVP_aes_256_gcm(), nullptr, key, nullptr) == 1;
  return keyed_ ? true : fail();
}

bool GcmStreamOpener::open(const uint8_t nonce[kGcmNonceSize], const uint8_t* aad, size_t aad_len,
                           const uint8_t* ct, size_t ct_len, uint8_t* out) {
  if (!keyed_) return fail();
  return gcm_open_with(ctx_, nonce, aad, aad_len, ct, ct_len, out) ? true : fail();
}

bool x25519(EVP_PKEY* private_key, const uint8_t peer_public[32], uint8_t out[32]) {
  EVP_PKEY* peer = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, peer_public, 32);
  if (peer == nullptr) return fail();
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new(private_key, nullptr);
  size_t len = 32;
  // OpenSSL refuses an all-zero shared secret (a small-order peer point), as RFC 7748 allows.
  bool ok = ctx != nullptr && EVP_PKEY_derive_init(ctx) == 1 &&
            EVP_PKEY_derive_set_peer(ctx, peer) == 1 && EVP_PKEY_derive(ctx, out, &len) == 1 &&
            len == 32;
  EVP_PKEY_CTX_free(ctx);
  EVP_PKEY_free(peer);
  return ok ? true : fail();
}

bool ed25519_verify(EVP_PKEY* public_key, const uint8_t* msg, size_t msg_len,
                    const uint8_t signature[64]) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  static const uint8_t kEmpty = 0;
  bool ok = ctx != nullptr &&
            EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, public_key) == 1 &&
            EVP_DigestVerify(ctx, signature, 64, msg_len ? msg : &kEmpty, msg_len) == 1;
  EVP_MD_CTX_free(ctx);
  return ok ? true : fail();
}

}  // namespace edgepack::crypto

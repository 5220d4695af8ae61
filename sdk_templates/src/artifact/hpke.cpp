// SPDX-License-Identifier: Apache-2.0
#include "artifact/hpke.h"

#include <openssl/evp.h>

#include <cstring>
#include <string>

#include "artifact/crypto.h"

namespace edgepack::hpke {
namespace {

constexpr char kVersionLabel[] = "HPKE-v1";

void append(std::vector<uint8_t>* out, const void* p, size_t n) {
  if (n == 0) return;
  const auto* b = static_cast<const uint8_t*>(p);
  out->insert(out->end(), b, b + n);
}
void append(std::vector<uint8_t>* out, const char* s) {
  append(out, s, std::strlen(s));
}
void append_u16be(std::vector<uint8_t>* out, uint16_t v) {
  out->push_back(static_cast<uint8_t>(v >> 8));
  out->push_back(static_cast<uint8_t>(v & 0xff));
}

// A byte buffer for labeled inputs, which hold secrets (dh, shared_secret): wiped on scope exit.
struct Scratch {
  std::vector<uint8_t> bytes;
  ~Scratch() { crypto::wipe(bytes.data(), bytes.size()); }
};

std::vector<uint8_t> kem_suite_id(const Suite& s) {
  std::vector<uint8_t> id;
  append(&id, "KEM");
  append_u16be(&id, s.kem_id);
  return id;
}

std::vector<uint8_t> hpke_suite_id(const Suite& s) {
  std::vector<uint8_t> id;
  append(&id, "HPKE");
  append_u16be(&id, s.kem_id);
  append_u16be(&id, s.kdf_id);
  append_u16be(&id, s.aead_id);
  return id;
}

// LabeledExtract(salt, label, ikm) = Extract(salt, "HPKE-v1" || suite_id || label || ikm)
bool labeled_extract(const std::vector<uint8_t>& suite_id, const uint8_t* salt, size_t salt_len,
                     const char* label, const uint8_t* ikm, size_t ikm_len, uint8_t prk[32]) {
  Scratch labeled;
  append(&labeled.bytes, kVersionLabel);
  append(&labeled.bytes, suite_id.data(), suite_id.size());
  append(&labeled.bytes, label);
  append(&labeled.bytes, ikm, ikm_len);
  return crypto::hkdf_extract(salt, salt_len, labeled.bytes.data(), labeled.bytes.size(), prk);
}

// LabeledExpand(prk, label, info, L) = Expand(prk, I2OSP(L, 2) || "HPKE-v1" || suite_id ||
//                                              label || info, L)
bool labeled_expand(const std::vector<uint8_t>& suite_id, const uint8_t* prk, const char* label,
                    const uint8_t* info, size_t info_len, uint8_t* out, size_t len) {
  Scratch labeled;
  append_u16be(&labeled.bytes, static_cast<uint16_t>(len));
  append(&labeled.bytes, kVersionLabel);
  append(&labeled.bytes, suite_id.data(), suite_id.size());
  append(&labeled.bytes, label);
  append(&labeled.bytes, info, info_len);
  return crypto::hkdf_expand(prk, 32, labeled.bytes.data(), labeled.bytes.size(), out, len);
}

bool supported(const Suite& s) {
  return s.kem_id == 0x0020 && s.kdf_id == 0x0001 &&
         ((s.aead_id == 0x0001 && s.nk == 16) || (s.aead_id == 0x0002 && s.nk == 32));
}

}  // namespace

KeySchedule::~KeySchedule() {
  crypto::wipe(secret, sizeof(secret));
  crypto::wipe(key, sizeof(key));
  crypto::wipe(base_nonce, sizeof(base_nonce));
}

bool decap(EVP_PKEY* receiver_private, const uint8_t enc[kNenc], uint8_t shared_secret[kNsecret]) {
  uint8_t pk_r[32];
  size_t pk_len = sizeof(pk_r);
  if (EVP_PKEY_get_raw_public_key(receiver_private, pk_r, &pk_len) != 1 || pk_len != 32) {
    return false;
  }
  crypto::Secret<32> dh;
  if (!crypto::x25519(receiver_private, enc, dh.data())) return false;
  std::vector<uint8_t> kem_context;
  append(&kem_context, enc, kNenc);
  append(&kem_context, pk_r, sizeof(pk_r));
  const std::vector<uint8_t> suite_id = kem_suite_id(kEdgepackSuite);
  crypto::Secret<32> eae_prk;
  return labeled_extract(suite_id, nullptr, 0, "eae_prk", dh.data(), dh.size(), eae_prk.data()) &&
         labeled_expand(suite_id, eae_prk.data(), "shared_secret", kem_context.data(),
                        kem_context.size(), shared_secret, kNsecret);
}

bool key_schedule(const Suite& suite, const uint8_t shared_secret[kNsecret], const uint8_t* info,
                  size_t info_len, KeySchedule* out) {
  if (!supported(suite)) return false;
  const std::vector<uint8_t> suite_id = hpke_suite_id(suite);
  uint8_t psk_id_hash[32];
  uint8_t info_hash[32];
  if (!labeled_extract(suite_id, nullptr, 0, "psk_id_hash", nullptr, 0, psk_id_hash) ||
      !labeled_extract(suite_id, nullptr, 0, "info_hash", info, info_len, info_hash)) {
    return false;
  }
  out->context.clear();
  out->context.push_back(0x00);  // mode_base
  append(&out->context, psk_id_hash, sizeof(psk_id_hash));
  append(&out->context, info_hash, sizeof(info_hash));
  // secret = LabeledExtract(shared_secret, "secret", psk) with psk = "".
  return labeled_extract(suite_id, shared_secret, kNsecret, "secret", nullptr, 0, out->secret) &&
         labeled_expand(suite_id, out->secret, "key", out->context.data(), out->context.size(),
                        out->key, suite.nk) &&
         labeled_expand(suite_id, out->secret, "base_nonce", out->context.data(),
                        out->context.size(), out->base_nonce, kNn);
}

bool open_base_first(const Suite& suite, EVP_PKEY* receiver_private, const uint8_t enc[kNenc],
                     const uint8_t* info, size_t info_len, const uint8_t* aad, size_t aad_len,
                     const uint8_t* ct, size_t ct_len, uint8_t* pt) {
  crypto::Secret<kNsecret> shared_secret;
  KeySchedule ks;
  if (!decap(receiver_private, enc, shared_secret.data()) ||
      !key_schedule(suite, shared_secret.data(), info, info_len, &ks)) {
    return false;
  }
  if (!crypto::aes_gcm_open(ks.key, suite.nk, ks.base_nonce, aad, aad_len, ct, ct_len, pt)) {
    if (ct_len > crypto::kGcmTagSize) crypto::wipe(pt, ct_len - crypto::kGcmTagSize);
    return false;
  }
  return true;
}

}  // namespace edgepack::hpke

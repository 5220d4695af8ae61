// SPDX-License-Identifier: Apache-2.0
// The HPKE receiver against RFC 9180 appendix A.1 (DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
// AES-128-GCM, base mode): decap, key schedule and the first Open. edgepack's suite differs
// only in the AEAD (AES-256-GCM, Nk = 32), which is a parameter of the same code.
#include <openssl/evp.h>

#include <cstdio>
#include <string>
#include <vector>

#include "artifact/crypto.h"
#include "artifact/hpke.h"
#include "test_util.h"

namespace {

using edgepack::test::hex;
using edgepack::test::unhex;

// RFC 9180, A.1.1 (base setup information) and A.1.1.1 (sequence number 0).
const char* kSkRm = "4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8";
const char* kPkRm = "3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d";
const char* kEnc = "37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431";
const char* kInfo = "4f6465206f6e2061204772656369616e2055726e";
const char* kSharedSecret = "fe0e18c9f024ce43799ae393c7e8fe8fce9d218875e8227b0187c04e7d2ea1fc";
const char* kKeyScheduleContext =
    "00725611c9d98c07c03f60095cd32d400d8347d45ed67097bbad50fc56da742d07"
    "cb6cffde367bb0565ba28bb02c90744a20f5ef37f30523526106f637abb05449";
const char* kSecret = "12fff91991e93b48de37e7daddb52981084bd8aa64289c3788471d9a9712f397";
const char* kKey = "4531685d41d65f03dc48f6b8302c05b0";
const char* kBaseNonce = "56d890e5accaaf011cff4b7d";
const char* kPt = "4265617574792069732074727574682c20747275746820626561757479";
const char* kAad = "436f756e742d30";
const char* kCt =
    "f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a9"
    "6d8770ac83d07bea87e13c512a";

EVP_PKEY* receiver_key() {
  const std::vector<uint8_t> sk = unhex(kSkRm);
  return EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, sk.data(), sk.size());
}

void test_receiver_public_key() {
  EVP_PKEY* sk = receiver_key();
  EP_CHECK(sk != nullptr);
  uint8_t pk[32];
  size_t len = sizeof(pk);
  EP_CHECK(EVP_PKEY_get_raw_public_key(sk, pk, &len) == 1);
  EP_CHECK_EQ(hex(pk, len), std::string(kPkRm));
  EVP_PKEY_free(sk);
}

void test_decap() {
  EVP_PKEY* sk = receiver_key();
  const std::vector<uint8_t> enc = unhex(kEnc);
  uint8_t shared[32];
  EP_CHECK(edgepack::hpke::decap(sk, enc.data(), shared));
  EP_CHECK_EQ(hex(shared, 32), std::string(kSharedSecret));
  EVP_PKEY_free(sk);
}

void test_key_schedule() {
  const std::vector<uint8_t> shared = unhex(kSharedSecret);
  const std::vector<uint8_t> info = unhex(kInfo);
  edgepack::hpke::KeySchedule ks;
  EP_CHECK(edgepack::hpke::key_schedule(edgepack::hpke::kAes128Suite, shared.data(), info.data(),
                                        info.size(), &ks));
  EP_CHECK_EQ(hex(ks.context.data(), ks.context.size()), std::string(kKeyScheduleContext));
  EP_CHECK_EQ(hex(ks.secret, 32), std::string(kSecret));
  EP_CHECK_EQ(hex(ks.key, 16), std::string(kKey));
  EP_CHECK_EQ(hex(ks.base_nonce, 12), std::string(kBaseNonce));
}

void test_open_first_message() {
  EVP_PKEY* sk = receiver_key();
  const std::vector<uint8_t> enc = unhex(kEnc), info = unhex(kInfo), aad = unhex(kAad);
  std::vector<uint8_t> ct = unhex(kCt);
  std::vector<uint8_t> pt(ct.size() - 16);
  EP_CHECK(edgepack::hpke::open_base_first(edgepack::hpke::kAes128Suite, sk, enc.data(),
                                           info.data(), info.size(), aad.data(), aad.size(),
                                           ct.data(), ct.size(), pt.data()));
  EP_CHECK_EQ(hex(pt.data(), pt.size()), std::string(kPt));

  // Any flipped bit (ciphertext, tag, aad or enc) must fail to open.
  for (size_t i = 0; i < ct.size(); ++i) {
    ct[i] ^= 0x01;
    EP_CHECK(!edgepack::hpke::open_base_first(edgepack::hpke::kAes128Suite, sk, enc.data(),
                                              info.data(), info.size(), aad.data(), aad.size(),
                                              ct.data(), ct.size(), pt.data()));
    ct[i] ^= 0x01;
  }
  std::vector<uint8_t> bad_aad = aad;
  bad_aad[0] ^= 0x80;
  EP_CHECK(!edgepack::hpke::open_base_first(edgepack::hpke::kAes128Suite, sk, enc.data(),
                                            info.data(), info.size(), bad_aad.data(),
                                            bad_aad.size(), ct.data(), ct.size(), pt.data()));
  std::vector<uint8_t> bad_enc = enc;
  bad_enc[5] ^= 0x10;
  EP_CHECK(!edgepack::hpke::open_base_first(edgepack::hpke::kAes128Suite, sk, bad_enc.data(),
                                            info.data(), info.size(), aad.data(), aad.size(),
                                            ct.data(), ct.size(), pt.data()));
  // The same vector under the edgepack suite (other aead_id in suite_id, Nk = 32) must not open.
  EP_CHECK(!edgepack::hpke::open_base_first(edgepack::hpke::kEdgepackSuite, sk, enc.data(),
                                            info.data(), info.size(), aad.data(), aad.size(),
                                            ct.data(), ct.size(), pt.data()));
  EVP_PKEY_free(sk);
}

// RFC 5869 test case 1 (HKDF-SHA256), which also pins the Extract/Expand split.
void test_hkdf_rfc5869() {
  const std::vector<uint8_t> ikm = unhex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b");
  const std::vector<uint8_t> salt = unhex("000102030405060708090a0b0c");
  const std::vector<uint8_t> info = unhex("f0f1f2f3f4f5f6f7f8f9");
  uint8_t prk[32];
  EP_CHECK(edgepack::crypto::hkdf_extract(salt.data(), salt.size(), ikm.data(), ikm.size(), prk));
  EP_CHECK_EQ(hex(prk, 32),
              std::string("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5"));
  uint8_t okm[42];
  EP_CHECK(edgepack::crypto::hkdf_expand(prk, 32, info.data(), info.size(), okm, sizeof(okm)));
  EP_CHECK_EQ(hex(okm, sizeof(okm)),
              std::string("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
                          "34007208d5b887185865"));
}

}  // namespace

int main() {
  test_receiver_public_key();
  test_decap();
  test_key_schedule();
  test_open_first_message();
  test_hkdf_rfc5869();
  return edgepack::test::finish("test_hpke_vectors");
}

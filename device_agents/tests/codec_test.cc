// SPDX-License-Identifier: Apache-2.0
// Unit test of the agent's codec: SHA-256 and CRC-32 vectors, COBS, frames, fields, and the
// X25519 of on-device key generation (RFC 7748 vectors), and the DEFLATE decoder of compressed
// chunks (streams made by zlib: fixed, stored and dynamic Huffman blocks).
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "frame.h"
#include "message.h"
#include "sha256.h"
#include "inflate.h"
#include "x25519.h"

using namespace epagent;

static int g_failures = 0;

#define CHECK(cond)                                                                 \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      ++g_failures;                                                                 \
    }                                                                               \
  } while (0)

static std::vector<uint8_t> bytes(const std::string& s) {
  return {s.begin(), s.end()};
}

static void test_sha256() {
  CHECK(sha256_hex("", 0) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc", 3) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  std::string m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  CHECK(sha256_hex(m.data(), m.size()) ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  Sha256 h;  // a million 'a' fed in uneven pieces exercises the block buffering
  std::string a(1001, 'a');
  for (int i = 0; i < 1000; ++i) h.update(a.data(), i % 2 ? 999 : 1001);
  CHECK(h.hex() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void test_crc32() {
  const char* s = "123456789";
  CHECK(crc32(reinterpret_cast<const uint8_t*>(s), 9) == 0xCBF43926u);
  CHECK(crc32(nullptr, 0) == 0);
}

static void test_cobs() {
  const uint8_t in[] = {0x11, 0x22, 0x00, 0x33};
  auto enc = cobs_encode(in, sizeof in);
  const std::vector<uint8_t> want = {0x03, 0x11, 0x22, 0x02, 0x33};
  CHECK(enc == want);
  for (size_t n : {0u, 1u, 253u, 254u, 255u, 256u, 600u}) {
    std::vector<uint8_t> d(n);
    for (size_t i = 0; i < n; ++i) d[i] = uint8_t((i * 7 + 1) % (i % 5 ? 256 : 1));
    auto e = cobs_encode(d.data(), d.size());
    for (uint8_t b : e) CHECK(b != 0);
    std::vector<uint8_t> back;
    CHECK(cobs_decode(e.data(), e.size(), &back));
    CHECK(back == d);
  }
  std::vector<uint8_t> out;
  const uint8_t bad[] = {0x05, 0x01};
  CHECK(!cobs_decode(bad, sizeof bad, &out));
}

static void test_frames_and_fields() {
  Frame f;
  f.type = kRun;
  f.seq = 42;
  f.payload = FieldWriter()
                  .add_str("argv", "bin/x")
                  .add_str("argv", "--y")
                  .add_int("timeout_ms", -5)
                  .take();
  auto wire = encode_frame(f);
  // Noise before, a corrupted copy, then the good frame: exactly one frame comes out and the
  // corrupted copy is reported as dropped.
  std::vector<uint8_t> stream = bytes("login: garbage\r\n");
  auto flipped = wire;
  flipped[wire.size() / 2] ^= 0x10;
  stream.insert(stream.end(), flipped.begin(), flipped.end());
  stream.insert(stream.end(), wire.begin(), wire.end());
  FrameDecoder dec;
  std::vector<FrameDecoder::Result> res;
  for (uint8_t b : stream) dec.feed(&b, 1, &res);  // byte by byte, like a slow line
  int frames = 0, dropped = 0;
  for (auto& r : res) {
    if (r.event == FrameDecoder::Event::kFrame) {
      ++frames;
      CHECK(r.frame.type == kRun && r.frame.seq == 42);
      Fields in;
      CHECK(in.parse(r.frame.payload));
      auto argv = in.get_all("argv");
      CHECK(argv.size() == 2 && argv[0] == "bin/x" && argv[1] == "--y");
      int64_t t = 0;
      CHECK(in.get_int("timeout_ms", &t) && t == -5);
      CHECK(!in.has("cwd"));
    } else {
      ++dropped;
    }
  }
  CHECK(frames == 1);
  CHECK(dropped == 2);
  // An oversize candidate is skipped without buffering and the next frame still decodes.
  std::vector<uint8_t> big(kMaxFrame + 10, 0x41);
  res.clear();
  dec.feed(big.data(), big.size(), &res);
  dec.feed(wire.data(), wire.size(), &res);
  CHECK(res.size() == 2 && res[0].event == FrameDecoder::Event::kOversize &&
        res[1].event == FrameDecoder::Event::kFrame);
  Fields bad;
  CHECK(!bad.parse(bytes("\x05key")));
}

static std::vector<uint8_t> unhex(const char* h) {
  std::vector<uint8_t> out;
  for (size_t i = 0; h[i] && h[i + 1]; i += 2) {
    unsigned v = 0;
    std::sscanf(h + i, "%2x", &v);
    out.push_back(uint8_t(v));
  }
  return out;
}

static void test_x25519() {
  // RFC 7748 section 5.2, first vector.
  auto k = unhex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4");
  auto u = unhex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c");
  uint8_t out[32];
  x25519(out, k.data(), u.data());
  CHECK(std::vector<uint8_t>(out, out + 32) ==
        unhex("c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"));
  // RFC 7748 section 6.1: Alice's public key, and the shared secret both sides compute.
  auto a = unhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
  auto b = unhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
  uint8_t apub[32], bpub[32], s1[32], s2[32];
  x25519_base(apub, a.data());
  x25519_base(bpub, b.data());
  CHECK(std::vector<uint8_t>(apub, apub + 32) ==
        unhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"));
  x25519(s1, a.data(), bpub);
  x25519(s2, b.data(), apub);
  CHECK(std::memcmp(s1, s2, 32) == 0);
  CHECK(std::vector<uint8_t>(s1, s1 + 32) ==
        unhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"));
}

static void test_inflate() {
  std::vector<uint8_t> out;
  auto fixed = unhex("cb48cdc9c957c8402701");
  CHECK(inflate_raw(fixed.data(), fixed.size(), 1000, &out));
  CHECK(std::string(out.begin(), out.end()) == "hello hello hello hello");
  auto stored = unhex("010300fcff616263");
  CHECK(inflate_raw(stored.data(), stored.size(), 1000, &out));
  CHECK(std::string(out.begin(), out.end()) == "abc");
  auto dynamic = unhex(
      "b58d571282301400aff20ee038f6de2bf686bd064820121284a0c2e9f50ccef8bdbbb3aa85e11150dd06cd"
      "132f0e44bce11e38ae0fe2893d905fcc50148221cc32a87f9313c9543a93cde50bc552b952add51bcd56bb"
      "d3edf595c170349e4c67f3c572a5ae37dbddfe703c9d2fd71bd2740313d3a2779b395cb80fcf97c1f3f50e"
      "236c98d845df2d323197403961486290d897318818d5c0083972a80e4a40888338684ce8761c7e0e3f");
  std::string want;
  for (int i = 0; i < 3; ++i) want += "The quick brown fox jumps over the lazy dog; ";
  for (int c = 48; c < 123; ++c) want += char(c);
  for (int i = 0; i < 2; ++i) want += "edgepack agent inflate test, zlib dynamic Huffman block. ";
  CHECK(inflate_raw(dynamic.data(), dynamic.size(), 1000, &out));
  CHECK(std::string(out.begin(), out.end()) == want);
  // Limits and damage: too small an output bound, a truncated stream, a bad block type.
  CHECK(!inflate_raw(dynamic.data(), dynamic.size(), want.size() - 1, &out));
  CHECK(!inflate_raw(dynamic.data(), dynamic.size() - 5, 1000, &out));
  const uint8_t bad_type[] = {0x07};
  CHECK(!inflate_raw(bad_type, 1, 1000, &out));
  const uint8_t bad_stored[] = {0x01, 0x03, 0x00, 0xfc, 0xfe, 'a', 'b', 'c'};
  CHECK(!inflate_raw(bad_stored, sizeof bad_stored, 1000, &out));
}

int main() {
  test_inflate();
  test_x25519();
  test_sha256();
  test_crc32();
  test_cobs();
  test_frames_and_fields();
  if (g_failures) {
    std::fprintf(stderr, "%d check(s) failed\n", g_failures);
    return 1;
  }
  std::printf("codec test: ok\n");
  return 0;
}

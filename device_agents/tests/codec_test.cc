// SPDX-License-Identifier: Apache-2.0
// Unit test of the agent's codec: SHA-256 and CRC-32 vectors, COBS, frames, fields.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "frame.h"
#include "message.h"
#include "sha256.h"

using namespace epagent;

static int g_failures = 0;

#define CHECK(cond)                                                  \
  do {                                                               \
    if (!(cond)) {                                                   \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      ++g_failures;                                                  \
    }                                                                \
  } while (0)

static std::vector<uint8_t> bytes(const std::string& s) { return {s.begin(), s.end()}; }

static void test_sha256() {
  CHECK(sha256_hex("", 0) ==
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc", 3) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
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
  f.payload = FieldWriter().add_str("argv", "bin/x").add_str("argv", "--y")
                  .add_int("timeout_ms", -5).take();
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

int main() {
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

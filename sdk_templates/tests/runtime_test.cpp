// SPDX-License-Identifier: Apache-2.0
// Runtime unit tests: strict JSON, .npy round trip, and (given a device graph file) the loader's
// bounds checks: every truncation must be refused, and every single-byte corruption of the
// header and tables must be either refused with an Error or load into a graph that still
// passes the loader's invariants — never crash. Usage: runtime_test [GRAPH]
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/npy.h"
#include "runtime/graph.h"

namespace {
int failures = 0;
void check(bool ok, const std::string& what) {
  if (!ok) {
    ++failures;
    std::fprintf(stderr, "FAILED: %s\n", what.c_str());
  }
}

bool json_rejects(const std::string& text) {
  try {
    edgepack::json::parse(text);
    return false;
  } catch (const edgepack::Error&) {
    return true;
  }
}

void test_json() {
  const auto v = edgepack::json::parse(
      R"({"a": [1, -2.5e3, true, null], "s": "x\u00e9\ud83d\ude00\n", "o": {}})");
  check(v.find("a")->array.size() == 4, "json array");
  check(v.find("a")->array[0].as_int("a") == 1, "json int");
  check(v.find("a")->array[1].number == -2500.0, "json float");
  check(v.find("s")->str == "x\xc3\xa9\xf0\x9f\x98\x80\n", "json unicode escapes");
  for (const char* bad :
       {"", "{", "[1,]", "{\"a\":1,}", "{\"a\":1 \"b\":2}", "01", "1.", "-", "\"\\x\"", "\"\x01\"",
        "{\"a\":1,\"a\":2}", "[1] x", "tru", "\"\\ud800\"", "{a:1}", "[1e]", "nan"})
    check(json_rejects(bad), std::string("json rejects ") + bad);
  check(json_rejects(std::string(100, '[') + std::string(100, ']')), "json depth limit");
}

void test_npy() {
  edgepack::npy::Array a;
  a.descr = "<f4";
  a.shape = {2, 3};
  for (int i = 0; i < 6; ++i) {
    const float f = static_cast<float>(i) * 0.5f;
    const auto* p = reinterpret_cast<const uint8_t*>(&f);
    a.data.insert(a.data.end(), p, p + 4);
  }
  const auto bytes = edgepack::npy::serialize(a);
  const auto b = edgepack::npy::parse(bytes.data(), bytes.size(), "mem");
  check(b.shape == a.shape && b.data == a.data && b.descr == a.descr, "npy round trip");
  auto truncated = bytes;
  truncated.pop_back();
  bool refused = false;
  try {
    edgepack::npy::parse(truncated.data(), truncated.size(), "mem");
  } catch (const edgepack::Error&) {
    refused = true;
  }
  check(refused, "npy refuses truncated data");
}

bool loads(const std::vector<uint8_t>& bytes) {
  try {
    edgepack::load_graph(bytes.data(), bytes.size());
    return true;
  } catch (const edgepack::Error&) {
    return false;
  }
}

void test_loader(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  check(!bytes.empty() && loads(bytes), "valid graph loads");
  for (size_t n = 0; n < bytes.size(); ++n) {
    std::vector<uint8_t> t(bytes.begin(), bytes.begin() + static_cast<long>(n));
    if (loads(t)) check(false, "truncation to " + std::to_string(n) + " bytes accepted");
  }
  // Data section offset: corruptions inside constants are legitimately accepted.
  uint64_t data_off = 0;
  for (int i = 0; i < 8; ++i) data_off |= static_cast<uint64_t>(bytes[128 + i]) << (8 * i);
  const size_t limit = std::min<size_t>(bytes.size(), data_off);
  size_t accepted = 0;
  for (size_t i = 0; i < limit; ++i)
    for (uint8_t flip : {uint8_t{0x01}, uint8_t{0x80}, uint8_t{0xFF}}) {
      std::vector<uint8_t> c = bytes;
      c[i] ^= flip;
      accepted += loads(c);  // must not crash (run under ASan in the sanitizer build)
    }
  std::printf("loader: %zu truncations refused, %zu of %zu corruptions accepted\n", bytes.size(),
              accepted, limit * 3);
  std::vector<uint8_t> magic = bytes;
  magic[0] = 'X';
  check(!loads(magic), "bad magic refused");
  std::vector<uint8_t> version = bytes;
  version[4] = 2;
  check(!loads(version), "other major version refused");
}
}  // namespace

int main(int argc, char** argv) {
  test_json();
  test_npy();
  if (argc > 1) test_loader(argv[1]);
  if (failures) {
    std::fprintf(stderr, "%d failure(s)\n", failures);
    return 1;
  }
  std::printf("runtime_test: all passed\n");
  return 0;
}

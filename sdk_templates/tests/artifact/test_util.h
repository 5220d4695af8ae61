// SPDX-License-Identifier: Apache-2.0
// A minimal check harness for the artifact reader's C++ tests: failures print the file, line
// and values, and the test binary exits non-zero.
#pragma once

#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

namespace edgepack::test {

inline int& failures() {
  static int n = 0;
  return n;
}

inline std::string hex(const uint8_t* p, size_t n) {
  static const char* kDigits = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s.push_back(kDigits[p[i] >> 4]);
    s.push_back(kDigits[p[i] & 15]);
  }
  return s;
}

inline std::vector<uint8_t> unhex(const std::string& s) {
  auto nibble = [](char c) -> uint8_t {
    if (c >= '0' && c <= '9') return static_cast<uint8_t>(c - '0');
    if (c >= 'a' && c <= 'f') return static_cast<uint8_t>(c - 'a' + 10);
    throw std::invalid_argument("bad hex");
  };
  std::vector<uint8_t> out;
  for (size_t i = 0; i + 1 < s.size(); i += 2) {
    out.push_back(static_cast<uint8_t>(nibble(s[i]) << 4 | nibble(s[i + 1])));
  }
  return out;
}

inline int finish(const char* name) {
  if (failures() == 0) {
    std::printf("%s: ok\n", name);
    return 0;
  }
  std::fprintf(stderr, "%s: %d check(s) failed\n", name, failures());
  return 1;
}

}  // namespace edgepack::test

#define EP_CHECK(cond)                                                              \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      ++edgepack::test::failures();                                                 \
    }                                                                               \
  } while (0)

#define EP_CHECK_EQ(a, b)                                                               \
  do {                                                                                  \
    const auto& ep_a_ = (a);                                                            \
    const auto& ep_b_ = (b);                                                            \
    if (!(ep_a_ == ep_b_)) {                                                            \
      std::fprintf(stderr, "%s:%d: %s != %s\n  %s\n  %s\n", __FILE__, __LINE__, #a, #b, \
                   std::string(ep_a_).c_str(), std::string(ep_b_).c_str());             \
      ++edgepack::test::failures();                                                     \
    }                                                                                   \
  } while (0)

// SPDX-License-Identifier: Apache-2.0
#include "common/npy.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>

#include "common/atomic_file.h"
#include "common/error.h"

namespace edgepack {
namespace npy {
namespace {
[[noreturn]] void bad(const std::string& what, const std::string& why) {
  throw Error(ErrorCode::kInvalidArgument, what + ": not a supported .npy file: " + why);
}

// Value of `'key': ` in the header dict, up to the next top-level ',' or '}'.
std::string field(const std::string& h, const std::string& key, const std::string& what) {
  const size_t k = h.find("'" + key + "'");
  if (k == std::string::npos) bad(what, "header lacks '" + key + "'");
  size_t p = h.find(':', k);
  if (p == std::string::npos) bad(what, "bad header");
  ++p;
  while (p < h.size() && h[p] == ' ') ++p;
  size_t e = p;
  if (p < h.size() && h[p] == '(')
    e = h.find(')', p) + 1;
  else if (p < h.size() && h[p] == '\'')
    e = h.find('\'', p + 1) + 1;
  else
    while (e < h.size() && h[e] != ',' && h[e] != '}') ++e;
  if (e == 0 || e > h.size()) bad(what, "bad header");
  return h.substr(p, e - p);
}
}  // namespace

std::string descr_for(const std::string& dtype) {
  if (dtype == "float32") return "<f4";
  if (dtype == "uint8") return "|u1";
  if (dtype == "int32") return "<i4";
  if (dtype == "int64") return "<i8";
  if (dtype == "bool") return "|b1";
  if (dtype == "int8") return "|i1";
  if (dtype == "int16") return "<i2";
  if (dtype == "float16") return "<f2";
  if (dtype == "uint16") return "<u2";
  if (dtype == "uint32") return "<u4";
  if (dtype == "uint64") return "<u8";
  if (dtype == "float64") return "<f8";
  return "";
}

std::string dtype_for(const std::string& descr) {
  if (descr == "<f4") return "float32";
  if (descr == "|u1" || descr == "<u1") return "uint8";
  if (descr == "<i4") return "int32";
  if (descr == "<i8") return "int64";
  if (descr == "|b1") return "bool";
  if (descr == "|i1" || descr == "<i1") return "int8";
  if (descr == "<i2") return "int16";
  if (descr == "<f2") return "float16";
  if (descr == "<u2") return "uint16";
  if (descr == "<u4") return "uint32";
  if (descr == "<u8") return "uint64";
  if (descr == "<f8") return "float64";
  return "";
}

size_t item_size(const std::string& descr) {
  const std::string d = dtype_for(descr);
  if (d == "float32" || d == "int32") return 4;
  if (d == "int64") return 8;
  if (d == "int16" || d == "float16" || d == "uint16") return 2;
  if (d == "uint32") return 4;
  if (d == "uint64" || d == "float64") return 8;
  if (d.empty()) return 0;
  return 1;
}

Array parse(const uint8_t* b, size_t size, const std::string& what) {
  if (size < 10 || std::memcmp(b, "\x93NUMPY", 6) != 0) bad(what, "bad magic");
  const int major = b[6];
  size_t hlen, hstart;
  if (major == 1) {
    hlen = b[8] | (b[9] << 8);
    hstart = 10;
  } else if (major == 2 || major == 3) {
    if (size < 12) bad(what, "truncated");
    hlen = b[8] | (b[9] << 8) | (static_cast<size_t>(b[10]) << 16) |
           (static_cast<size_t>(b[11]) << 24);
    hstart = 12;
  } else {
    bad(what, "unknown version");
  }
  if (hlen > size - hstart) bad(what, "truncated header");
  const std::string h(reinterpret_cast<const char*>(b + hstart), hlen);
  Array a;
  std::string descr = field(h, "descr", what);
  if (descr.size() < 2) bad(what, "bad descr");
  a.descr = descr.substr(1, descr.size() - 2);
  if (a.descr == "<u1") a.descr = "|u1";
  if (a.descr == "<i1") a.descr = "|i1";
  if (item_size(a.descr) == 0) bad(what, "unsupported dtype " + a.descr);
  if (field(h, "fortran_order", what).rfind("False", 0) != 0) bad(what, "Fortran order");
  const std::string shape = field(h, "shape", what);
  // 2^40 elements at most, and never more bytes than size_t holds (32-bit boards: a size_t
  // shift by 40 is undefined there and refused every array).
  constexpr uint64_t kMaxCount = std::min<uint64_t>(uint64_t{1} << 40, SIZE_MAX / 8);
  size_t count = 1;
  for (size_t p = 1; p < shape.size();) {
    while (p < shape.size() && (shape[p] == ' ' || shape[p] == ',')) ++p;
    if (p >= shape.size() || shape[p] == ')') break;
    char* end = nullptr;
    const long long d = std::strtoll(shape.c_str() + p, &end, 10);
    if (end == shape.c_str() + p || d < 0 || d > (1LL << 40)) bad(what, "bad shape");
    a.shape.push_back(d);
    if (d && count > kMaxCount / static_cast<uint64_t>(d)) bad(what, "too large");
    count *= static_cast<size_t>(d);
    p = static_cast<size_t>(end - shape.c_str());
  }
  const size_t bytes = count * item_size(a.descr);
  if (size - hstart - hlen != bytes) bad(what, "data size does not match the shape");
  a.data.assign(b + hstart + hlen, b + size);
  return a;
}

Array load(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(ErrorCode::kIoError, path + ": cannot open");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return parse(bytes.data(), bytes.size(), path);
}

std::vector<uint8_t> serialize(const Array& a) {
  std::string shape = "(";
  for (size_t i = 0; i < a.shape.size(); ++i) shape += std::to_string(a.shape[i]) + ", ";
  if (a.shape.size() > 1)
    shape.resize(shape.size() - 2);
  else if (a.shape.size() == 1)
    shape.resize(shape.size() - 1);
  shape += ")";
  std::string h = "{'descr': '" + a.descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  const size_t total = 10 + h.size() + 1;
  h.append((64 - total % 64) % 64, ' ');
  h += '\n';
  const uint8_t preamble[10] = {0x93,
                                'N',
                                'U',
                                'M',
                                'P',
                                'Y',
                                1,
                                0,
                                static_cast<uint8_t>(h.size() & 0xFF),
                                static_cast<uint8_t>(h.size() >> 8)};
  std::vector<uint8_t> out(10 + h.size() + a.data.size());
  std::memcpy(out.data(), preamble, 10);
  std::memcpy(out.data() + 10, h.data(), h.size());
  if (!a.data.empty()) std::memcpy(out.data() + 10 + h.size(), a.data.data(), a.data.size());
  return out;
}

void save(const std::string& path, const Array& a) {
  const std::vector<uint8_t> bytes = serialize(a);
  write_file_atomic(path, bytes.data(), bytes.size());
}

}  // namespace npy
}  // namespace edgepack

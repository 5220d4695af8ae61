// SPDX-License-Identifier: Apache-2.0
#include "npy_file.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace edgepack_run {
namespace {

const char kMagic[] = "\x93NUMPY";

const char* descr_of(ep_dtype d) {
  switch (d) {
    case EP_DTYPE_FLOAT32: return "<f4";
    case EP_DTYPE_UINT8: return "|u1";
    case EP_DTYPE_INT32: return "<i4";
    case EP_DTYPE_INT64: return "<i8";
  }
  return "?";
}

bool dtype_of(const std::string& descr, ep_dtype* out) {
  if (descr == "<f4") *out = EP_DTYPE_FLOAT32;
  else if (descr == "|u1" || descr == "<u1") *out = EP_DTYPE_UINT8;
  else if (descr == "<i4") *out = EP_DTYPE_INT32;
  else if (descr == "<i8") *out = EP_DTYPE_INT64;
  else return false;
  return true;
}

// The value of 'key' in the header dict, as raw text up to the next top-level ',' or '}'.
bool dict_value(const std::string& header, const std::string& key, std::string* out) {
  const size_t k = header.find("'" + key + "'");
  if (k == std::string::npos) return false;
  size_t p = header.find(':', k);
  if (p == std::string::npos) return false;
  ++p;
  while (p < header.size() && header[p] == ' ') ++p;
  size_t end = p;
  int depth = 0;
  for (; end < header.size(); ++end) {
    const char c = header[end];
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (depth == 0 && (c == ',' || c == '}')) break;
  }
  if (depth == 0 && end < header.size() && header[end] == ')') ++end;
  *out = header.substr(p, end - p);
  return true;
}

std::string trim_quotes(std::string s) {
  while (!s.empty() && (s.back() == ' ')) s.pop_back();
  if (s.size() >= 2 && (s.front() == '\'' || s.front() == '"')) s = s.substr(1, s.size() - 2);
  return s;
}

}  // namespace

const char* dtype_name(ep_dtype d) {
  switch (d) {
    case EP_DTYPE_FLOAT32: return "float32";
    case EP_DTYPE_UINT8: return "uint8";
    case EP_DTYPE_INT32: return "int32";
    case EP_DTYPE_INT64: return "int64";
  }
  return "unknown";
}

size_t dtype_size(ep_dtype d) {
  switch (d) {
    case EP_DTYPE_FLOAT32: return 4;
    case EP_DTYPE_UINT8: return 1;
    case EP_DTYPE_INT32: return 4;
    case EP_DTYPE_INT64: return 8;
  }
  return 0;
}

NpyArray read_npy(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw NpyError{path + ": cannot open"};
  std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto bad = [&](const std::string& why) { return NpyError{path + ": not a valid .npy file (" + why + ")"}; };
  if (bytes.size() < 10 || bytes.compare(0, 6, kMagic, 6) != 0) throw bad("magic");
  const int major = static_cast<uint8_t>(bytes[6]);
  size_t header_len = 0, start = 0;
  if (major == 1) {
    header_len = static_cast<uint8_t>(bytes[8]) | static_cast<size_t>(static_cast<uint8_t>(bytes[9])) << 8;
    start = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) throw bad("header");
    for (int i = 0; i < 4; ++i) header_len |= static_cast<size_t>(static_cast<uint8_t>(bytes[8 + i])) << (8 * i);
    start = 12;
  } else {
    throw bad("version");
  }
  if (header_len > bytes.size() - start) throw bad("header length");
  const std::string header = bytes.substr(start, header_len);
  std::string descr, fortran, shape_text;
  if (!dict_value(header, "descr", &descr) || !dict_value(header, "fortran_order", &fortran) ||
      !dict_value(header, "shape", &shape_text)) {
    throw bad("header keys");
  }
  NpyArray a;
  descr = trim_quotes(descr);
  if (!dtype_of(descr, &a.dtype)) {
    throw NpyError{path + ": dtype '" + descr + "' is not one of float32, uint8, int32, int64"};
  }
  if (fortran.rfind("False", 0) != 0) throw NpyError{path + ": Fortran order is not supported"};
  // shape: "(2, 3)" / "(5,)" / "()"
  size_t count = 1;
  std::string digits;
  for (char c : shape_text) {
    if (c >= '0' && c <= '9') {
      digits.push_back(c);
    } else if (!digits.empty()) {
      a.shape.push_back(std::stoll(digits));
      count *= static_cast<size_t>(a.shape.back());
      digits.clear();
    }
  }
  const size_t body = start + header_len;
  const size_t want = count * dtype_size(a.dtype);
  if (bytes.size() - body != want) {
    throw NpyError{path + ": data size " + std::to_string(bytes.size() - body) +
                   " does not match its shape (" + std::to_string(want) + " bytes)"};
  }
  a.data.assign(bytes.begin() + static_cast<std::ptrdiff_t>(body), bytes.end());
  return a;
}

void write_npy(const std::string& path, ep_dtype dtype, const std::vector<int64_t>& shape,
               const void* data, size_t bytes) {
  std::ostringstream dict;
  dict << "{'descr': '" << descr_of(dtype) << "', 'fortran_order': False, 'shape': (";
  for (size_t i = 0; i < shape.size(); ++i) dict << shape[i] << (shape.size() == 1 ? "," : (i + 1 < shape.size() ? ", " : ""));
  dict << "), }";
  std::string header = dict.str();
  // Pad so that the data starts on a 64-byte boundary; the header ends with '\n'.
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw NpyError{tmp + ": cannot write"};
    f.write(kMagic, 6);
    const char version[2] = {1, 0};
    f.write(version, 2);
    const char len[2] = {static_cast<char>(header.size() & 0xff), static_cast<char>(header.size() >> 8)};
    f.write(len, 2);
    f.write(header.data(), static_cast<std::streamsize>(header.size()));
    f.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
    if (!f.flush()) throw NpyError{tmp + ": write failed"};
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw NpyError{path + ": cannot rename the temporary file into place"};
  }
}

}  // namespace edgepack_run

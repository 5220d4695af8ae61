// SPDX-License-Identifier: Apache-2.0
#include "message.h"

namespace epagent {

bool Fields::parse(const std::vector<uint8_t>& p) {
  map_.clear();
  size_t i = 0;
  while (i < p.size()) {
    size_t klen = p[i];
    if (klen == 0 || i + 1 + klen + 4 > p.size()) return false;
    std::string key(reinterpret_cast<const char*>(&p[i + 1]), klen);
    i += 1 + klen;
    size_t vlen = size_t(p[i]) | (size_t(p[i + 1]) << 8) | (size_t(p[i + 2]) << 16) |
                  (size_t(p[i + 3]) << 24);
    i += 4;
    if (vlen > p.size() - i) return false;
    map_[key].emplace_back(reinterpret_cast<const char*>(p.data() + i), vlen);
    i += vlen;
  }
  return true;
}

bool Fields::get_int(const std::string& key, int64_t* out) const {
  auto it = map_.find(key);
  if (it == map_.end() || it->second[0].size() != 8) return false;
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | uint8_t(it->second[0][size_t(i)]);
  *out = int64_t(v);
  return true;
}

bool Fields::get_str(const std::string& key, std::string* out) const {
  auto it = map_.find(key);
  if (it == map_.end()) return false;
  *out = it->second[0];
  return true;
}

std::vector<std::string> Fields::get_all(const std::string& key) const {
  auto it = map_.find(key);
  return it == map_.end() ? std::vector<std::string>() : it->second;
}

void FieldWriter::header(const std::string& key, size_t vlen) {
  out_.push_back(uint8_t(key.size()));
  out_.insert(out_.end(), key.begin(), key.end());
  for (int i = 0; i < 4; ++i) out_.push_back(uint8_t(vlen >> (8 * i)));
}

FieldWriter& FieldWriter::add_int(const std::string& key, int64_t v) {
  header(key, 8);
  uint64_t u = uint64_t(v);
  for (int i = 0; i < 8; ++i) out_.push_back(uint8_t(u >> (8 * i)));
  return *this;
}

FieldWriter& FieldWriter::add_str(const std::string& key, const std::string& v) {
  header(key, v.size());
  out_.insert(out_.end(), v.begin(), v.end());
  return *this;
}

FieldWriter& FieldWriter::add_bytes(const std::string& key, const uint8_t* data, size_t len) {
  header(key, len);
  out_.insert(out_.end(), data, data + len);
  return *this;
}

}  // namespace epagent

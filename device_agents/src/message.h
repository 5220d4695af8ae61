// SPDX-License-Identifier: Apache-2.0
// Message payloads (PROTOCOL.md section 4): repeated `klen|key|vlen|value` fields.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "protocol_table.h"

namespace epagent {

// Fields of a received payload. Accessors return false when a field is missing or malformed.
class Fields {
 public:
  bool parse(const std::vector<uint8_t>& payload);
  bool has(const std::string& key) const { return map_.count(key) != 0; }
  bool get_int(const std::string& key, int64_t* out) const;
  bool get_str(const std::string& key, std::string* out) const;
  std::vector<std::string> get_all(const std::string& key) const;

 private:
  std::map<std::string, std::vector<std::string>> map_;
};

// Builds a payload field by field.
class FieldWriter {
 public:
  FieldWriter& add_int(const std::string& key, int64_t v);
  FieldWriter& add_str(const std::string& key, const std::string& v);
  FieldWriter& add_bytes(const std::string& key, const uint8_t* data, size_t len);
  std::vector<uint8_t> take() { return std::move(out_); }

 private:
  void header(const std::string& key, size_t vlen);
  std::vector<uint8_t> out_;
};

}  // namespace epagent

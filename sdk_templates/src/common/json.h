// SPDX-License-Identifier: Apache-2.0
// A strict, bounds-checked JSON parser (RFC 8259) for the manifest: no trailing commas, no
// comments, nesting depth limited, \u escapes decoded to UTF-8, duplicate keys rejected.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace edgepack {
namespace json {

class Value {
 public:
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };
  Type type = Type::kNull;
  bool b = false;
  double number = 0.0;
  bool is_integer = false;
  int64_t integer = 0;
  std::string str;
  std::vector<Value> array;
  std::map<std::string, Value> object;

  bool is_null() const { return type == Type::kNull; }
  bool is_object() const { return type == Type::kObject; }
  bool is_array() const { return type == Type::kArray; }
  bool is_string() const { return type == Type::kString; }
  // Member access; nullptr when absent or not an object.
  const Value* find(const std::string& key) const;
  // Typed access that throws Error(kArtifactInvalid-class "manifest: <path>: ...") when wrong.
  const Value& at(const std::string& key, const std::string& path) const;
  const std::string& as_string(const std::string& path) const;
  int64_t as_int(const std::string& path) const;
  bool as_bool(const std::string& path) const;
  const std::vector<Value>& as_array(const std::string& path) const;
};

// Throws edgepack::Error(kInvalidArgument) "json: <reason> at offset N".
Value parse(const std::string& text, int max_depth = 64);

}  // namespace json
}  // namespace edgepack

// SPDX-License-Identifier: Apache-2.0
// The backend table: the built-in CPU backend plus plugins loaded with dlopen
// (include/edgepack_backend.h, ABI 2: partitions). Placement: the first backend in preference
// order that supports a node claims it; consecutive claimed nodes form one partition
// (interpreter.cpp); CPU is always the last resort.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "edgepack_backend.h"

namespace edgepack {

class Backend {
 public:
  ~Backend();
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;

  const std::string& name() const { return name_; }
  const edgepack_backend_api* api() const { return api_; }  // nullptr for the built-in CPU
  bool is_cpu() const { return api_ == nullptr; }
  // The plugin's describe() (ABI 2.1), or empty.
  const std::string& description() const { return description_; }

  static std::shared_ptr<Backend> cpu();
  // Loads `spec`: a path to a .so (contains '/'), or a name looked up as
  // libedgepack_backend_<name>.so or libedgepack_<name>.so in EDGEPACK_BACKEND_PATH
  // (':'-separated), the folder of the binary holding the runtime and its ../lib, then the loader's
  // default search path. Returns nullptr and sets *why when rejected (also logged to stderr).
  static std::shared_ptr<Backend> load(const std::string& spec, std::string* why);

 private:
  Backend() = default;
  std::string name_;
  std::string description_;
  const edgepack_backend_api* api_ = nullptr;
  void* handle_ = nullptr;
};

// Why `api` breaks the versioning rule of edgepack_backend.h, or "" when the loader accepts it.
std::string check_table(const edgepack_backend_api& api);

// Resolves RuntimeOptions::backend_preference; "cpu" is appended when absent. Rejected plugins
// are skipped (logged).
std::vector<std::shared_ptr<Backend>> resolve_backends(const std::vector<std::string>& preference);

}  // namespace edgepack

// SPDX-License-Identifier: Apache-2.0
// The backend table: the built-in CPU backend plus plugins loaded with dlopen
// (include/edgepack_backend.h). Node placement: first backend in preference order that supports
// and prepares the node; CPU is always the last resort.
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

  static std::shared_ptr<Backend> cpu();
  // Loads `spec`: a path to a .so (contains '/'), or a name looked up as
  // libedgepack_backend_<name>.so in EDGEPACK_BACKEND_PATH (':'-separated) and the loader's
  // default search path. Returns nullptr and sets *why when rejected (also logged to stderr).
  static std::shared_ptr<Backend> load(const std::string& spec, std::string* why);

 private:
  Backend() = default;
  std::string name_;
  const edgepack_backend_api* api_ = nullptr;
  void* handle_ = nullptr;
};

// Resolves RuntimeOptions::backend_preference; "cpu" is appended when absent. Rejected plugins
// are skipped (logged).
std::vector<std::shared_ptr<Backend>> resolve_backends(const std::vector<std::string>& preference);

}  // namespace edgepack

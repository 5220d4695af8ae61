// SPDX-License-Identifier: Apache-2.0
#include "runtime/backend.h"
#include "runtime/log.h"

#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>

namespace edgepack {
namespace {
void log_rejection(const std::string& spec, const std::string& why) {
  log(LogLevel::kWarning, "backend '" + spec + "' rejected: " + why);
}

std::string version_string(uint32_t v) {
  if (v < 0x10000u) return std::to_string(v);  // ABI 1: a plain number
  return std::to_string(v >> 16) + "." + std::to_string(v & 0xFFFFu);
}
}  // namespace

// The versioning rule of include/edgepack_backend.h: same major, a table at least as large as
// 2.0's, the 2.0 functions present. Empty string: accepted.
std::string check_table(const edgepack_backend_api& api) {
  const uint32_t major = EDGEPACK_BACKEND_API_VERSION_MAJOR(api.api_version);
  if (major != EDGEPACK_BACKEND_API_MAJOR)
    return "built for ABI " + version_string(api.api_version) + " (major " + std::to_string(major) +
           "), runtime speaks ABI " + version_string(EDGEPACK_BACKEND_API_VERSION) + " (major " +
           std::to_string(EDGEPACK_BACKEND_API_MAJOR) + ")";
  if (api.struct_size < EDGEPACK_BACKEND_API_MIN_SIZE)
    return "function table of " + std::to_string(api.struct_size) +
           " bytes, smaller than ABI 2.0's " + std::to_string(EDGEPACK_BACKEND_API_MIN_SIZE);
  std::string missing;
  if (!api.name) missing += " name";
  if (!api.supports_op) missing += " supports_op";
  if (!api.prepare_partition) missing += " prepare_partition";
  if (!api.run_partition) missing += " run_partition";
  if (!missing.empty()) return "incomplete function table (NULL:" + missing + ")";
  return "";
}

Backend::~Backend() {
  if (api_ && api_->release) api_->release(api_->context);
  if (handle_) dlclose(handle_);
}

std::shared_ptr<Backend> Backend::cpu() {
  static std::shared_ptr<Backend> cpu = [] {
    std::shared_ptr<Backend> b(new Backend());
    b->name_ = "cpu";
    return b;
  }();
  return cpu;
}

std::shared_ptr<Backend> Backend::load(const std::string& spec, std::string* why) {
  auto reject = [&](const std::string& reason) -> std::shared_ptr<Backend> {
    log_rejection(spec, reason);
    if (why) *why = reason;
    return nullptr;
  };
  std::vector<std::string> candidates;
  if (spec.find('/') != std::string::npos) {
    candidates.push_back(spec);
  } else {
    // Two spellings: libedgepack_backend_<name>.so (test and vendor plugins) and
    // libedgepack_<name>.so (the backends built with the SDK, e.g. libedgepack_opencl.so).
    const std::string files[] = {"libedgepack_backend_" + spec + ".so",
                                 "libedgepack_" + spec + ".so"};
    std::vector<std::string> dirs;
    if (const char* path = std::getenv("EDGEPACK_BACKEND_PATH")) {
      std::string p = path;
      size_t start = 0;
      while (start <= p.size()) {
        const size_t end = p.find(':', start);
        const std::string dir = p.substr(start, end == std::string::npos ? end : end - start);
        if (!dir.empty()) dirs.push_back(dir);
        if (end == std::string::npos) break;
        start = end + 1;
      }
    }
    // Then the folder of the library (or program) holding this runtime, and its ../lib: an
    // installed SDK keeps libedgepack_opencl.so beside libedgepack.so.
    Dl_info self{};
    if (dladdr(reinterpret_cast<void*>(&resolve_backends), &self) && self.dli_fname) {
      const std::string path = self.dli_fname;
      const size_t slash = path.rfind('/');
      if (slash != std::string::npos) {
        dirs.push_back(path.substr(0, slash));
        dirs.push_back(path.substr(0, slash) + "/../lib");
      }
    }
    for (const auto& dir : dirs)
      for (const auto& file : files) candidates.push_back(dir + "/" + file);
    for (const auto& file : files) candidates.push_back(file);
  }
  void* handle = nullptr;
  std::string errors;
  for (const auto& c : candidates) {
    handle = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle) break;
    const char* e = dlerror();
    errors += (errors.empty() ? "" : "; ") + std::string(e ? e : c);
  }
  if (!handle) return reject("cannot load: " + errors);
  auto init =
      reinterpret_cast<edgepack_backend_init_fn>(dlsym(handle, EDGEPACK_BACKEND_INIT_SYMBOL));
  if (!init) {
    dlclose(handle);
    return reject("no symbol " EDGEPACK_BACKEND_INIT_SYMBOL);
  }
  const edgepack_backend_api* api = init(EDGEPACK_BACKEND_API_VERSION);
  std::string why_not;
  if (!api) {
    why_not = "init returned NULL for ABI version " + version_string(EDGEPACK_BACKEND_API_VERSION);
  } else {
    why_not = check_table(*api);
  }
  if (!why_not.empty()) {
    dlclose(handle);
    return reject(why_not);
  }
  std::shared_ptr<Backend> b(new Backend());
  b->name_ = api->name;
  b->api_ = api;
  if (EDGEPACK_BACKEND_HAS(api, describe))
    if (const char* d = api->describe(api->context)) b->description_ = d;
  b->handle_ = handle;
  return b;
}

std::vector<std::shared_ptr<Backend>> resolve_backends(const std::vector<std::string>& preference) {
  std::vector<std::shared_ptr<Backend>> out;
  bool have_cpu = false;
  for (const auto& spec : preference) {
    if (spec == "cpu") {
      out.push_back(Backend::cpu());
      have_cpu = true;
      continue;
    }
    std::string why;
    if (auto b = Backend::load(spec, &why)) out.push_back(std::move(b));
  }
  if (!have_cpu) out.push_back(Backend::cpu());
  return out;
}

}  // namespace edgepack

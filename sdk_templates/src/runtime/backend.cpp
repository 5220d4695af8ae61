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
}  // namespace

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
    const std::string file = "libedgepack_backend_" + spec + ".so";
    if (const char* path = std::getenv("EDGEPACK_BACKEND_PATH")) {
      std::string p = path;
      size_t start = 0;
      while (start <= p.size()) {
        const size_t end = p.find(':', start);
        const std::string dir = p.substr(start, end == std::string::npos ? end : end - start);
        if (!dir.empty()) candidates.push_back(dir + "/" + file);
        if (end == std::string::npos) break;
        start = end + 1;
      }
    }
    candidates.push_back(file);
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
  if (!api) {
    dlclose(handle);
    return reject("init returned NULL for ABI version " +
                  std::to_string(EDGEPACK_BACKEND_API_VERSION));
  }
  if (api->api_version != EDGEPACK_BACKEND_API_VERSION) {
    const std::string got = std::to_string(api->api_version);
    dlclose(handle);
    return reject("ABI version " + got + ", runtime speaks " +
                  std::to_string(EDGEPACK_BACKEND_API_VERSION));
  }
  if (api->struct_size < sizeof(edgepack_backend_api) || !api->name || !api->supports_op ||
      !api->prepare_node || !api->run_node) {
    dlclose(handle);
    return reject("incomplete function table");
  }
  std::shared_ptr<Backend> b(new Backend());
  b->name_ = api->name;
  b->api_ = api;
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

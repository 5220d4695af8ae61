// SPDX-License-Identifier: Apache-2.0
// edgepack C++ API: a header-only C++17 wrapper over the C API (edgepack.h). Handles are RAII
// (move-only), every failing call throws ep::Exception with the status code and message.
//
//   ep::Env env;
//   ep::Session s = ep::Session::from_file(env, "model.epk", ep::Key::pem_file("device.key"),
//                                          ep::Key::pem_file("publisher.pub"));
//   s.set_tensor("", "image", EP_DTYPE_UINT8, {480, 640, 3}, pixels.data(), pixels.size());
//   s.run();
//   ep::TensorRef labels = s.get_tensor("", "labels");   // borrowed until the next run
//
// An empty stage name ("") means the whole pipeline.
#pragma once

#include <array>
#include <algorithm>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "edgepack.h"

namespace ep {

class Exception : public std::runtime_error {
 public:
  Exception(ep_error_code code, const std::string& message)
      : std::runtime_error(message), code_(code) {}
  ep_error_code code() const noexcept { return code_; }

 private:
  ep_error_code code_;
};

namespace detail {
// Takes ownership of `status` and throws when it is an error.
inline void check(ep_status* status) {
  if (status == nullptr) return;
  const ep_error_code code = ep_status_code(status);
  std::string message = ep_status_message(status);
  ep_status_release(status);
  throw Exception(code, message);
}
inline const char* stage_ptr(const std::string& stage) {
  return stage.empty() ? nullptr : stage.c_str();
}
struct EnvRelease {
  void operator()(ep_env* p) const noexcept { ep_env_release(p); }
};
struct OptionsRelease {
  void operator()(ep_options* p) const noexcept { ep_options_release(p); }
};
struct SessionRelease {
  void operator()(ep_session* p) const noexcept { ep_session_release(p); }
};
}  // namespace detail

inline std::string version() {
  return ep_get_version();
}
// The EP_API_VERSION the library was built with (may be newer than this header's).
inline uint32_t api_version() {
  return ep_get_api_version();
}

// Where a key comes from. Holds its own copy of the path or bytes, wiped when it is destroyed.
class Key {
 public:
  static Key pem_file(std::string path) { return Key(EP_KEY_PEM_FILE, std::move(path)); }
  static Key pem_bytes(std::string pem) { return Key(EP_KEY_PEM_BYTES, std::move(pem)); }
  // A raw 32-byte X25519 private key (device keys only).
  static Key raw(const void* data, size_t size) {
    return Key(EP_KEY_RAW_BYTES, std::string(static_cast<const char*>(data), size));
  }
  ep_key c_key() const {
    ep_key k{};
    k.format = format_;
    if (format_ == EP_KEY_PEM_FILE) {
      k.path = value_.c_str();
    } else {
      k.data = value_.data();
      k.size = value_.size();
    }
    return k;
  }
  Key(const Key&) = default;
  Key(Key&&) = default;
  Key& operator=(const Key&) = default;
  Key& operator=(Key&&) = default;
  ~Key() { std::fill(value_.begin(), value_.end(), '\0'); }

 private:
  Key(uint32_t format, std::string value) : format_(format), value_(std::move(value)) {}
  uint32_t format_;
  std::string value_;
};

class Env {
 public:
  Env() {
    ep_env* env = nullptr;
    detail::check(ep_env_create(EP_API_VERSION, &env));
    env_.reset(env);
  }
  ep_env* get() const noexcept { return env_.get(); }

 private:
  std::unique_ptr<ep_env, detail::EnvRelease> env_;
};

class Options {
 public:
  Options() {
    ep_options* o = nullptr;
    detail::check(ep_options_create(&o));
    options_.reset(o);
  }
  Options& threads(int32_t n) {
    detail::check(ep_options_set_threads(get(), n));
    return *this;
  }
  Options& cpus(const std::vector<int32_t>& list) {  // API 5
    detail::check(ep_options_set_cpus(get(), list.data(), list.size()));
    return *this;
  }
  Options& backend_preference(const std::vector<std::string>& names) {
    std::vector<const char*> ptrs;
    for (const std::string& n : names) ptrs.push_back(n.c_str());
    detail::check(ep_options_set_backend_preference(get(), ptrs.data(), ptrs.size()));
    return *this;
  }
  Options& min_version_counter(uint64_t counter) {
    detail::check(ep_options_set_min_version_counter(get(), counter));
    return *this;
  }
  ep_options* get() const noexcept { return options_.get(); }

 private:
  std::unique_ptr<ep_options, detail::OptionsRelease> options_;
};

struct TensorInfo {
  std::string name;
  ep_dtype dtype;
  std::vector<int64_t> shape;
  bool dynamic_dim0;
};

// The ep_dtype of a C++ element type (API version 3: typed reads are checked).
template <class T>
struct dtype_of;
template <>
struct dtype_of<float> {
  static constexpr ep_dtype value = EP_DTYPE_FLOAT32;
};
template <>
struct dtype_of<uint8_t> {
  static constexpr ep_dtype value = EP_DTYPE_UINT8;
};
template <>
struct dtype_of<int32_t> {
  static constexpr ep_dtype value = EP_DTYPE_INT32;
};
template <>
struct dtype_of<int64_t> {
  static constexpr ep_dtype value = EP_DTYPE_INT64;
};

// A borrowed view of an output: valid until the next run() of its session.
struct TensorRef {
  ep_dtype dtype;
  std::vector<int64_t> shape;
  const void* data;
  size_t bytes;
  // The data as T; throws ep::Exception (EP_INVALID_ARGUMENT) when T is not the dtype.
  template <class T>
  const T* as() const {
    if (dtype_of<T>::value != dtype)
      throw Exception(EP_INVALID_ARGUMENT, "tensor dtype does not match the requested type");
    return static_cast<const T*>(data);
  }
};

struct StageTiming {
  std::string stage;
  double ms;
  int32_t runs;
};

struct LoadTiming {
  double verify_ms, decrypt_ms, prepare_ms;
};

class Session {
 public:
  static Session from_file(const Env& env, const std::string& path, const Key& device_key,
                           const Key& publisher_key, const Options* options = nullptr) {
    const ep_key dev = device_key.c_key(), pub = publisher_key.c_key();
    ep_session* s = nullptr;
    detail::check(ep_session_create_from_file(env.get(), path.c_str(), &dev, &pub,
                                              options ? options->get() : nullptr, 0, &s));
    return Session(s);
  }
  static Session from_memory(const Env& env, const void* data, size_t size, const Key& device_key,
                             const Key& publisher_key, const Options* options = nullptr) {
    const ep_key dev = device_key.c_key(), pub = publisher_key.c_key();
    ep_session* s = nullptr;
    detail::check(ep_session_create_from_memory(env.get(), data, size, &dev, &pub,
                                                options ? options->get() : nullptr, 0, &s));
    return Session(s);
  }

  void prepare() { detail::check(ep_session_prepare(get())); }

  std::vector<std::string> stage_names() const {
    size_t n = 0;
    detail::check(ep_session_stage_count(get(), &n));
    std::vector<std::string> names;
    for (size_t i = 0; i < n; ++i) {
      const char* name = nullptr;
      detail::check(ep_session_stage_name(get(), i, &name));
      names.emplace_back(name);
    }
    return names;
  }

  std::vector<TensorInfo> inputs(const std::string& stage = "") const {
    return describe(stage, ep_session_input_count, ep_session_input_info);
  }
  std::vector<TensorInfo> outputs(const std::string& stage = "") const {
    return describe(stage, ep_session_output_count, ep_session_output_info);
  }

  void set_tensor(const std::string& stage, const std::string& name, ep_dtype dtype,
                  const std::vector<int64_t>& shape, const void* data, size_t bytes) {
    detail::check(ep_session_set_tensor(get(), detail::stage_ptr(stage), name.c_str(), dtype,
                                        shape.data(), shape.size(), data, bytes));
  }

  // set_tensor without the copy, for the next run only (API version 7): `data` must stay valid
  // and unchanged until that run returns. See ep_session_bind_tensor.
  void bind_tensor(const std::string& stage, const std::string& name, ep_dtype dtype,
                   const std::vector<int64_t>& shape, const void* data, size_t bytes) {
    detail::check(ep_session_bind_tensor(get(), detail::stage_ptr(stage), name.c_str(), dtype,
                                         shape.data(), shape.size(), data, bytes));
  }

  TensorRef get_tensor(const std::string& stage, const std::string& name) {
    ep_tensor t{};
    detail::check(ep_session_get_tensor(get(), detail::stage_ptr(stage), name.c_str(), &t));
    return ref(t);
  }

  // A camera frame into image input `name` (API version 3): see ep_session_set_image.
  void set_image(const std::string& stage, const std::string& name, const ep_image& image) {
    detail::check(ep_session_set_image(get(), detail::stage_ptr(stage), name.c_str(), &image, 0));
  }

  // The frame sizes image input `name` accepts (API version 6), as {{min height, min width},
  // {max height, max width}}: see ep_session_input_size_bounds.
  std::pair<std::array<int64_t, 2>, std::array<int64_t, 2>> input_size_bounds(
      const std::string& stage, const std::string& name) {
    std::array<int64_t, 2> lo{}, hi{};
    detail::check(ep_session_input_size_bounds(get(), detail::stage_ptr(stage), name.c_str(),
                                               lo.data(), hi.data()));
    return {lo, hi};
  }

  // Output `name` read as T (API version 3): throws when its dtype is not T's.
  template <class T>
  TensorRef get_tensor_as(const std::string& stage, const std::string& name) {
    ep_tensor t{};
    detail::check(ep_session_get_tensor_typed(get(), detail::stage_ptr(stage), name.c_str(),
                                              dtype_of<T>::value, &t));
    return ref(t);
  }

  // The golden input `name` stored in the artifact for the pipeline ("") or a stage, decoded
  // (API version 4): see ep_session_golden_input. Borrowed until the session is released.
  TensorRef golden_input(const std::string& stage, const std::string& name) {
    ep_tensor t{};
    detail::check(ep_session_golden_input(get(), detail::stage_ptr(stage), name.c_str(), &t));
    return ref(t);
  }

  // Class labels of a model or one of its stages ("" = the first model with labels).
  std::vector<std::string> labels(const std::string& model = "") const {
    const char* m = model.empty() ? nullptr : model.c_str();
    size_t n = 0;
    detail::check(ep_session_label_count(get(), m, &n));
    std::vector<std::string> out;
    for (size_t i = 0; i < n; ++i) {
      const char* label = nullptr;
      detail::check(ep_session_label(get(), m, i, &label));
      out.emplace_back(label);
    }
    return out;
  }

  void run(const std::string& stage = "") {
    detail::check(ep_session_run(get(), detail::stage_ptr(stage)));
  }

  std::vector<StageTiming> stage_timings() const {
    size_t n = 0;
    detail::check(ep_session_timing_count(get(), &n));
    std::vector<StageTiming> out;
    for (size_t i = 0; i < n; ++i) {
      const char* stage = nullptr;
      StageTiming t{};
      detail::check(ep_session_stage_timing(get(), i, &stage, &t.ms, &t.runs));
      t.stage = stage;
      out.push_back(std::move(t));
    }
    return out;
  }

  LoadTiming load_timing() const {
    LoadTiming t{};
    detail::check(ep_session_load_timing(get(), &t.verify_ms, &t.decrypt_ms, &t.prepare_ms));
    return t;
  }

  // Per-node profiling (API version 2): see ep_session_set_profiling / ep_session_profile_json.
  void set_profiling(bool enable) {
    detail::check(ep_session_set_profiling(get(), enable ? 1 : 0));
  }
  std::string profile_json() const {
    const char* json = nullptr;
    detail::check(ep_session_profile_json(get(), &json));
    return json;
  }

  ep_session* get() const noexcept { return session_.get(); }

 private:
  explicit Session(ep_session* s) : session_(s) {}

  static TensorRef ref(const ep_tensor& t) {
    return TensorRef{static_cast<ep_dtype>(t.dtype),
                     std::vector<int64_t>(t.shape, t.shape + t.rank), t.data, t.bytes};
  }

  template <class CountFn, class InfoFn>
  std::vector<TensorInfo> describe(const std::string& stage, CountFn count_fn,
                                   InfoFn info_fn) const {
    size_t n = 0;
    detail::check(count_fn(get(), detail::stage_ptr(stage), &n));
    std::vector<TensorInfo> out;
    for (size_t i = 0; i < n; ++i) {
      ep_tensor_info info{};
      detail::check(info_fn(get(), detail::stage_ptr(stage), i, &info));
      out.push_back(TensorInfo{info.name, static_cast<ep_dtype>(info.dtype),
                               std::vector<int64_t>(info.shape, info.shape + info.rank),
                               (info.flags & EP_TENSOR_DYNAMIC_DIM0) != 0});
    }
    return out;
  }

  std::unique_ptr<ep_session, detail::SessionRelease> session_;
};

}  // namespace ep

// SPDX-License-Identifier: Apache-2.0
// The C API's environment, options and sessions: a thin shell over edgepack::Artifact (the
// verified, decrypted sections) and edgepack::Pipeline (the runtime). Every entry point runs
// inside capi::guarded(), checks its pointers first and writes its out-parameters last, so that
// a failing call leaves them untouched.
#include <chrono>
#include <cstddef>
#include <cstring>
#include <list>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "artifact/artifact.h"
#include "c_api/image.h"
#include "c_api/status.h"
#include "common/json.h"
#include "common/npy.h"
#include "edgepack.h"
#include "runtime/frame_input.h"
#include "runtime/log.h"
#include "runtime/runtime.h"

// The shipped struct layouts are frozen: any change here is an ABI break.
static_assert(sizeof(ep_error_code) == sizeof(int), "ep_error_code is int-sized");
static_assert(offsetof(ep_key, format) == 0 && offsetof(ep_key, reserved) == 4 &&
                  offsetof(ep_key, path) == 8 && offsetof(ep_key, data) == 8 + sizeof(void*) &&
                  offsetof(ep_key, size) == 8 + 2 * sizeof(void*) &&
                  sizeof(ep_key) == 8 + 3 * sizeof(void*),
              "ep_key layout (API version 1) cannot change");
static_assert(offsetof(ep_tensor_info, name) == 0 &&
                  offsetof(ep_tensor_info, dtype) == sizeof(void*) &&
                  offsetof(ep_tensor_info, flags) == sizeof(void*) + 4 &&
                  offsetof(ep_tensor_info, rank) == sizeof(void*) + 8 &&
                  offsetof(ep_tensor_info, shape) == 2 * sizeof(void*) + 8 &&
                  sizeof(ep_tensor_info) == 3 * sizeof(void*) + 8,
              "ep_tensor_info layout (API version 1) cannot change");
static_assert(offsetof(ep_tensor, dtype) == 0 && offsetof(ep_tensor, flags) == 4 &&
                  offsetof(ep_tensor, rank) == 8 &&
                  offsetof(ep_tensor, shape) == 8 + sizeof(void*) &&
                  offsetof(ep_tensor, data) == 8 + 2 * sizeof(void*) &&
                  offsetof(ep_tensor, bytes) == 8 + 3 * sizeof(void*) &&
                  sizeof(ep_tensor) == 8 + 4 * sizeof(void*),
              "ep_tensor layout (API version 1) cannot change");
static_assert(offsetof(ep_image, format) == 0 && offsetof(ep_image, reserved) == 4 &&
                  offsetof(ep_image, width) == 8 && offsetof(ep_image, height) == 12 &&
                  offsetof(ep_image, planes) == 16 &&
                  offsetof(ep_image, strides) == 16 + 2 * sizeof(void*) &&
                  sizeof(ep_image) == 16 + 4 * sizeof(void*),
              "ep_image layout (API version 3) cannot change");
static_assert(static_cast<int>(EP_ARTIFACT_INVALID) ==
                      static_cast<int>(edgepack::ErrorCode::kArtifactInvalid) &&
                  static_cast<int>(EP_IO_ERROR) == static_cast<int>(edgepack::ErrorCode::kIoError),
              "ep_error_code mirrors edgepack::ErrorCode");
static_assert(static_cast<int>(EP_DTYPE_FLOAT32) == static_cast<int>(edgepack::DType::kFloat32) &&
                  static_cast<int>(EP_DTYPE_INT64) == static_cast<int>(edgepack::DType::kInt64),
              "ep_dtype mirrors edgepack::DType");

#ifndef EDGEPACK_VERSION_STRING
#define EDGEPACK_VERSION_STRING "0.0.0"
#endif

struct ep_env {
  uint32_t api_version = EP_API_VERSION;
};

struct ep_options {
  edgepack::RuntimeOptions runtime;
  edgepack::OpenOptions open;
};

struct ep_session {
  std::unique_ptr<edgepack::Artifact> artifact;
  std::unique_ptr<edgepack::Pipeline> pipeline;
  bool prepared = false;
  double verify_ms = 0.0, decrypt_ms = 0.0, prepare_ms = 0.0;
  std::vector<std::string> stage_names;

  // Tensor descriptions handed out as ep_tensor_info: built once per stage, kept until release
  // (std::map nodes never move, so the borrowed pointers stay valid).
  struct Described {
    std::vector<edgepack::TensorInfo> infos;
  };
  mutable std::map<std::string, Described> inputs, outputs;
  // Output views handed out since the last run (borrowed until the next run).
  std::list<edgepack::TensorView> views;
  std::vector<edgepack::StageTiming> timings;
  std::string profile;  // ep_session_profile_json's text (borrowed until the next call)

  // API version 3 checks: inputs set so far ("stage\n" + name; stage "" is the pipeline), and
  // what has run (outputs may be read only after a run produced them).
  std::set<std::string> inputs_set;
  bool pipeline_ran = false;
  // API version 7: inputs bound to the caller's memory for the next run (keys as inputs_set),
  // and whether the last pipeline run left every stage's inputs readable (none was bound).
  std::set<std::string> inputs_bound;
  bool stages_fed = false;
  std::set<std::string> stages_ran;
  // Labels per model, and which model (or stage of it) each name means; parsed on first use.
  mutable bool labels_loaded = false;
  mutable std::map<std::string, std::vector<std::string>> labels;  // model -> labels
  mutable std::map<std::string, std::string> label_owner;          // model or stage -> model
  mutable std::string first_labelled;
  mutable std::map<std::string, std::string> pixel_format;  // stage -> its model's pixel_format
  mutable std::map<std::string, std::vector<std::string>> readers;  // pipeline input -> stages
  // Golden inputs decoded so far ("stage\n" + name; stage "" is the pipeline): handed out as
  // borrowed ep_tensor views until release (std::map nodes never move).
  struct GoldenInput {
    int32_t dtype = 0;
    std::vector<int64_t> shape;
    std::vector<uint8_t> data;
  };
  std::map<std::string, GoldenInput> golden;
};

namespace edgepack::capi {
namespace {

template <class T>
void require(const T* p, const char* what) {
  if (p == nullptr) invalid_argument(std::string(what) + " is NULL");
}

std::string stage_arg(const char* stage) {
  return stage == nullptr ? std::string() : stage;
}

DeviceKey load_device_key(const ep_key* k) {
  require(k, "device_key");
  if (k->reserved != 0) invalid_argument("device_key.reserved must be 0");
  switch (k->format) {
    case EP_KEY_PEM_FILE:
      require(k->path, "device_key.path");
      return DeviceKey::from_pem_file(k->path);
    case EP_KEY_PEM_BYTES:
      require(k->data, "device_key.data");
      return DeviceKey::from_pem(k->data, k->size);
    case EP_KEY_RAW_BYTES:
      require(k->data, "device_key.data");
      return DeviceKey::from_raw(k->data, k->size);
    default:
      invalid_argument("device_key.format is not an ep_key_format");
  }
}

PublisherKey load_publisher_key(const ep_key* k) {
  require(k, "publisher_key");
  if (k->reserved != 0) invalid_argument("publisher_key.reserved must be 0");
  switch (k->format) {
    case EP_KEY_PEM_FILE:
      require(k->path, "publisher_key.path");
      return PublisherKey::from_pem_file(k->path);
    case EP_KEY_PEM_BYTES:
      require(k->data, "publisher_key.data");
      return PublisherKey::from_pem(k->data, k->size);
    default:
      invalid_argument("publisher_key.format must be EP_KEY_PEM_FILE or EP_KEY_PEM_BYTES");
  }
}

double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

// The manifest and graphs are authenticated by now, so a failure to load them is a broken
// artifact: reported as ArtifactInvalid("manifest"), with the loader's detail (no secret can
// leak through it: the bytes came from the publisher). A missing op or backend stays
// kUnsupported, memory exhaustion stays what it is.
std::unique_ptr<Pipeline> load_pipeline(const Artifact& artifact, const RuntimeOptions& options) {
  try {
    return Pipeline::load(artifact.manifest_json(), artifact, options);
  } catch (const ArtifactInvalid&) {
    throw;
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kUnsupported || e.code() == ErrorCode::kOutOfMemory) throw;
    throw Error(ErrorCode::kArtifactInvalid,
                std::string("artifact invalid (manifest): ") + e.what());
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(ErrorCode::kArtifactInvalid,
                std::string("artifact invalid (manifest): ") + e.what());
  }
}

ep_session* create_session(ep_env* env, const uint8_t* data, size_t size, const char* path,
                           const ep_key* device_key, const ep_key* publisher_key,
                           const ep_options* options, uint32_t flags) {
  require(env, "env");
  if (flags != 0) invalid_argument("flags must be 0");
  const DeviceKey device = load_device_key(device_key);
  const PublisherKey publisher = load_publisher_key(publisher_key);
  const ep_options defaults;
  const ep_options& opts = options != nullptr ? *options : defaults;

  auto session = std::make_unique<ep_session>();
  session->artifact = path != nullptr ? Artifact::open_file(path, device, publisher, opts.open)
                                      : Artifact::open(data, size, device, publisher, opts.open);
  session->verify_ms = session->artifact->timing().verify_ms;
  session->decrypt_ms = session->artifact->timing().decrypt_ms;
  const auto t_load = std::chrono::steady_clock::now();
  session->pipeline = load_pipeline(*session->artifact, opts.runtime);
  session->prepare_ms = ms_since(t_load);  // graph loading counts as preparation
  session->stage_names = session->pipeline->stage_names();
  return session.release();
}

void prepare(ep_session* s) {
  if (s->prepared) return;
  const auto t = std::chrono::steady_clock::now();
  s->pipeline->prepare();
  s->prepare_ms += ms_since(t);
  s->prepared = true;
}

const std::vector<TensorInfo>& described(const ep_session* s, const char* stage, bool inputs) {
  auto& cache = inputs ? s->inputs : s->outputs;
  const std::string key = stage_arg(stage);
  auto it = cache.find(key);
  if (it == cache.end()) {
    ep_session::Described d;
    d.infos = inputs ? s->pipeline->inputs(key) : s->pipeline->outputs(key);
    it = cache.emplace(key, std::move(d)).first;
  }
  return it->second.infos;
}

void fill_info(const TensorInfo& t, ep_tensor_info* out) {
  out->name = t.name.c_str();
  out->dtype = static_cast<int32_t>(t.dtype);
  out->flags = t.dynamic_dim0 ? EP_TENSOR_DYNAMIC_DIM0 : 0u;
  out->rank = t.shape.size();
  out->shape = t.shape.data();
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

std::string expected_text(const TensorInfo& t) {
  return std::string(dtype_name(t.dtype)) + " " + shape_text(t.shape) +
         (t.dynamic_dim0
              ? " (dim 0 at most " + std::to_string(t.shape.empty() ? 0 : t.shape[0]) + ")"
              : "") +
         bounds_text(t);
}

// The caller-side checks of set_tensor, with messages that name what was expected. An unknown
// name is left to the runtime (EP_NOT_FOUND).
void check_input(const ep_session* s, const char* stage, const std::string& name, DType dtype,
                 const std::vector<int64_t>& shape, size_t bytes) {
  for (const TensorInfo& t : described(s, stage, true)) {
    if (t.name != name) continue;
    const std::string want = "expected " + expected_text(t);
    if (dtype != t.dtype)
      invalid_argument("input '" + name + "': dtype " + dtype_name(dtype) + ", " + want);
    if (!frame_shape_ok(t, shape))
      invalid_argument("input '" + name + "': shape " + shape_text(shape) + ", " + want);
    size_t need = dtype_size(dtype);
    for (int64_t d : shape) need *= static_cast<size_t>(d);
    if (bytes != need)
      invalid_argument("input '" + name + "': " + std::to_string(bytes) + " bytes, expected " +
                       std::to_string(need) + " for " + dtype_name(dtype) + " " +
                       shape_text(shape));
    return;
  }
}

std::string input_key(const char* stage, const std::string& name) {
  return stage_arg(stage) + "\n" + name;
}

// Refuses a run while an input it reads was never set.
void check_run_inputs(const ep_session* s, const char* stage) {
  if (stage != nullptr && s->stages_fed) return;  // the pipeline fed this stage's inputs
  for (const TensorInfo& t : described(s, stage, true)) {
    if (s->inputs_set.count(input_key(stage, t.name)) != 0) continue;
    invalid_argument(
        std::string(stage == nullptr ? "pipeline" : "stage '" + stage_arg(stage) + "'") +
        " input '" + t.name + "' was not set (" + expected_text(t) +
        "): call ep_session_set_tensor before ep_session_run");
  }
}

void check_ran(const ep_session* s, const char* stage, const std::string& name) {
  if (s->pipeline_ran || (stage != nullptr && s->stages_ran.count(stage_arg(stage)) != 0)) return;
  invalid_argument("output '" + name + "' read before " +
                   (stage == nullptr ? std::string("a run of the pipeline")
                                     : "a run of stage '" + stage_arg(stage) + "'") +
                   ": call ep_session_run first");
}

void load_labels(const ep_session* s) {
  if (s->labels_loaded) return;
  const json::Value manifest = json::parse(s->artifact->manifest_json());
  if (const json::Value* models = manifest.find("models");
      models != nullptr && models->is_array()) {
    for (const json::Value& m : models->array) {
      const json::Value* name = m.find("name");
      if (name == nullptr || !name->is_string()) continue;
      std::vector<std::string> list;
      if (const json::Value* l = m.find("labels"); l != nullptr && l->is_array())
        for (const json::Value& v : l->array)
          if (v.is_string()) list.push_back(v.str);
      if (!list.empty() && s->first_labelled.empty()) s->first_labelled = name->str;
      s->label_owner[name->str] = name->str;
      if (const json::Value* st = m.find("stages"); st != nullptr && st->is_array())
        for (const json::Value& v : st->array)
          if (v.is_string()) s->label_owner.emplace(v.str, name->str);
      s->labels[name->str] = std::move(list);
      const json::Value* pre = m.find("preprocess");
      const json::Value* fmt =
          pre != nullptr && pre->is_object() ? pre->find("pixel_format") : nullptr;
      if (fmt != nullptr && fmt->is_string())
        if (const json::Value* st = m.find("stages"); st != nullptr && st->is_array())
          for (const json::Value& v : st->array)
            if (v.is_string()) s->pixel_format[v.str] = fmt->str;
    }
  }
  if (const json::Value* pipe = manifest.find("pipeline"); pipe != nullptr && pipe->is_object())
    if (const json::Value* steps = pipe->find("steps"); steps != nullptr && steps->is_array())
      for (const json::Value& step : steps->array) {
        const json::Value* st = step.find("stage");
        const json::Value* bind = step.find("bind");
        if (st == nullptr || !st->is_string() || bind == nullptr || !bind->is_object()) continue;
        for (const auto& b : bind->object)
          if (b.second.is_string() && b.second.str.find(':') == std::string::npos)
            s->readers[b.second.str].push_back(st->str);
      }
  s->labels_loaded = true;
}

// Golden input `name` of the pipeline (`stage` NULL) or a stage, as manifest.md's `golden`
// describes it: a .npy section, or int8 codes with a `scale` (a float32 input, decoded exactly:
// code * scale). The manifest and sections are authenticated, so a malformed entry is a broken
// artifact; a missing one is kNotFound.
ep_session::GoldenInput decode_golden_input(const ep_session* s, const char* stage,
                                            const std::string& name) {
  const json::Value manifest = json::parse(s->artifact->manifest_json());
  const json::Value* table = manifest.find("golden");
  if (table != nullptr && table->is_object() && stage != nullptr) {
    const json::Value* stages = table->find("stages");
    table = stages != nullptr && stages->is_object() ? stages->find(stage) : nullptr;
  }
  const json::Value* inputs =
      table != nullptr && table->is_object() ? table->find("inputs") : nullptr;
  const std::string where = stage == nullptr ? "the pipeline" : "stage '" + stage_arg(stage) + "'";
  if (inputs == nullptr || !inputs->is_object())
    throw Error(ErrorCode::kNotFound, "the artifact has no golden inputs for " + where);
  const json::Value* entry = inputs->find(name);
  if (entry == nullptr) {
    std::string known;
    for (const auto& kv : inputs->object) known += (known.empty() ? "" : ", ") + kv.first;
    throw Error(ErrorCode::kNotFound, "the artifact has no golden input '" + name + "' for " +
                                          where + " (golden inputs: " + known + ")");
  }
  const std::string path = "golden." + std::string(stage == nullptr ? "" : "stages.") +
                           stage_arg(stage) + (stage == nullptr ? "" : ".") + "inputs." + name;
  size_t size = 0;
  const uint8_t* bytes = s->artifact->section(entry->at("section", path).as_string(path), &size);
  npy::Array a;
  try {
    a = npy::parse(bytes, size, "golden input '" + name + "'");
  } catch (const Error& e) {
    throw ArtifactInvalid(std::string("golden input: ") + e.what());
  }
  ep_session::GoldenInput g;
  g.shape = a.shape;
  const std::string dtype = npy::dtype_for(a.descr);
  if (const json::Value* scale = entry->find("scale"); scale != nullptr) {
    if (scale->type != json::Value::Type::kNumber || dtype != "int8")
      throw ArtifactInvalid("golden input '" + name + "': a scale needs int8 codes");
    const float k = static_cast<float>(scale->number);
    g.dtype = EP_DTYPE_FLOAT32;
    g.data.resize(a.data.size() * sizeof(float));
    for (size_t i = 0; i < a.data.size(); ++i) {
      const float v = static_cast<float>(static_cast<int8_t>(a.data[i])) * k;
      std::memcpy(g.data.data() + i * sizeof(float), &v, sizeof(float));
    }
    return g;
  }
  const std::pair<const char*, ep_dtype> known[] = {{"float32", EP_DTYPE_FLOAT32},
                                                    {"uint8", EP_DTYPE_UINT8},
                                                    {"int32", EP_DTYPE_INT32},
                                                    {"int64", EP_DTYPE_INT64}};
  for (const auto& [dtype_name, code] : known)
    if (dtype == dtype_name) g.dtype = code;
  if (g.dtype == 0)
    throw Error(ErrorCode::kUnsupported, "golden input '" + name + "' is " +
                                             (dtype.empty() ? a.descr : dtype) +
                                             ", which the C API has no dtype for");
  g.data = std::move(a.data);
  return g;
}

// The channel order an image input wants: the preprocess pixel_format of the (first) stage
// that reads it; "" when no reader has a preprocess table.
std::string pixel_order(const ep_session* s, const char* stage, const std::string& name) {
  load_labels(s);
  std::vector<std::string> stages;
  if (stage != nullptr) {
    stages.push_back(stage);
  } else if (auto it = s->readers.find(name); it != s->readers.end()) {
    stages = it->second;
  }
  for (const std::string& st : stages)
    if (auto it = s->pixel_format.find(st); it != s->pixel_format.end()) return it->second;
  return "";
}

const std::vector<std::string>& labels_of(const ep_session* s, const char* model) {
  static const std::vector<std::string> none;
  load_labels(s);
  if (model == nullptr) {
    return s->first_labelled.empty() ? none : s->labels.at(s->first_labelled);
  }
  auto owner = s->label_owner.find(model);
  if (owner == s->label_owner.end())
    throw Error(ErrorCode::kNotFound, std::string("no model or stage named '") + model + "'");
  return s->labels.at(owner->second);
}

void get_output(ep_session* session, const char* stage, const char* name, const DType* want,
                ep_tensor* tensor) {
  require(session, "session");
  require(name, "name");
  require(tensor, "tensor");
  edgepack::TensorView view = session->pipeline->output(stage_arg(stage), name);
  check_ran(session, stage, name);
  if (want != nullptr && view.info.dtype != *want)
    invalid_argument(std::string("output '") + name + "' is " + dtype_name(view.info.dtype) +
                     ", read as " + dtype_name(*want));
  session->views.push_back(std::move(view));
  const edgepack::TensorView& v = session->views.back();
  ep_tensor out;
  out.dtype = static_cast<int32_t>(v.info.dtype);
  out.flags = v.info.dynamic_dim0 ? EP_TENSOR_DYNAMIC_DIM0 : 0u;
  out.rank = v.shape.size();
  out.shape = v.shape.data();
  out.data = v.data;
  out.bytes = v.bytes;
  *tensor = out;
}

DType checked_dtype(ep_dtype d) {
  switch (d) {
    case EP_DTYPE_FLOAT32:
    case EP_DTYPE_UINT8:
    case EP_DTYPE_INT32:
    case EP_DTYPE_INT64:
      return static_cast<DType>(d);
  }
  invalid_argument("dtype is not an ep_dtype");
}

// ep_session_set_tensor (a copy) and ep_session_bind_tensor (the caller's memory, one run).
ep_status* place_tensor(ep_session* session, const char* stage, const char* name, ep_dtype dtype,
                        const int64_t* shape, size_t rank, const void* data, size_t bytes,
                        bool bind) {
  return guarded([&] {
    require(session, "session");
    require(name, "name");
    if (rank > 0) require(shape, "shape");
    if (bytes > 0) require(data, "data");
    const DType t = checked_dtype(dtype);
    prepare(session);
    std::vector<int64_t> dims(shape, shape + rank);
    check_input(session, stage, name, t, dims, bytes);
    const std::string key = input_key(stage, name);
    if (bind) {
      session->pipeline->bind_input(stage_arg(stage), name, t, dims, data, bytes);
      session->inputs_bound.insert(key);
    } else {
      session->pipeline->set_input(stage_arg(stage), name, t, dims, data, bytes);
      session->inputs_bound.erase(key);
    }
    session->inputs_set.insert(key);
  });
}

}  // namespace
}  // namespace edgepack::capi

using edgepack::capi::guarded;
using edgepack::capi::invalid_argument;
using edgepack::capi::require;

extern "C" {

const char* ep_get_version(void) {
  return EDGEPACK_VERSION_STRING;
}

uint32_t ep_get_api_version(void) {
  return EP_API_VERSION;
}

ep_status* ep_env_create(uint32_t api_version, ep_env** out) {
  return guarded([&] {
    require(out, "out");
    if (api_version == 0 || api_version > EP_API_VERSION) {
      throw edgepack::Error(edgepack::ErrorCode::kUnsupported,
                            "the app was built for edgepack API version " +
                                std::to_string(api_version) + "; this library supports 1.." +
                                std::to_string(EP_API_VERSION));
    }
    auto env = std::make_unique<ep_env>();
    env->api_version = api_version;
    *out = env.release();
  });
}

void ep_env_release(ep_env* env) {
  delete env;
}

ep_status* ep_options_create(ep_options** out) {
  return guarded([&] {
    require(out, "out");
    *out = new ep_options();
  });
}

void ep_options_release(ep_options* options) {
  delete options;
}

ep_status* ep_options_set_threads(ep_options* options, int32_t threads) {
  return guarded([&] {
    require(options, "options");
    if (threads < 1) invalid_argument("threads must be >= 1");
    options->runtime.threads = threads;
  });
}

ep_status* ep_options_set_cpus(ep_options* options, const int32_t* cpus, size_t count) {
  return guarded([&] {
    require(options, "options");
    if (count > 0) require(cpus, "cpus");
    if (count > 1024) invalid_argument("cpus: at most 1024 entries");
    std::vector<int> list;
    for (size_t i = 0; i < count; ++i) {
      if (cpus[i] < 0 || cpus[i] >= 1024)
        invalid_argument("cpus[" + std::to_string(i) + "] = " + std::to_string(cpus[i]) +
                         ": CPU numbers are 0..1023");
      list.push_back(cpus[i]);
    }
    options->runtime.cpus = std::move(list);
  });
}

ep_status* ep_options_set_backend_preference(ep_options* options, const char* const* names,
                                             size_t count) {
  return guarded([&] {
    require(options, "options");
    if (count > 0) require(names, "names");
    std::vector<std::string> list;
    for (size_t i = 0; i < count; ++i) {
      if (names[i] == nullptr || names[i][0] == '\0') invalid_argument("backend name is empty");
      list.emplace_back(names[i]);
    }
    options->runtime.backend_preference = std::move(list);
  });
}

ep_status* ep_options_set_min_version_counter(ep_options* options, uint64_t min_counter) {
  return guarded([&] {
    require(options, "options");
    options->open.min_counter = min_counter;
  });
}

ep_status* ep_session_create_from_file(ep_env* env, const char* artifact_path,
                                       const ep_key* device_key, const ep_key* publisher_key,
                                       const ep_options* options, uint32_t flags,
                                       ep_session** out) {
  return guarded([&] {
    require(artifact_path, "artifact_path");
    require(out, "out");
    *out = edgepack::capi::create_session(env, nullptr, 0, artifact_path, device_key, publisher_key,
                                          options, flags);
  });
}

ep_status* ep_session_create_from_memory(ep_env* env, const void* data, size_t size,
                                         const ep_key* device_key, const ep_key* publisher_key,
                                         const ep_options* options, uint32_t flags,
                                         ep_session** out) {
  return guarded([&] {
    require(data, "data");
    require(out, "out");
    *out = edgepack::capi::create_session(env, static_cast<const uint8_t*>(data), size, nullptr,
                                          device_key, publisher_key, options, flags);
  });
}

void ep_session_release(ep_session* session) {
  delete session;
}

ep_status* ep_session_prepare(ep_session* session) {
  return guarded([&] {
    require(session, "session");
    edgepack::capi::prepare(session);
  });
}

ep_status* ep_session_stage_count(const ep_session* session, size_t* count) {
  return guarded([&] {
    require(session, "session");
    require(count, "count");
    *count = session->stage_names.size();
  });
}

ep_status* ep_session_stage_name(const ep_session* session, size_t index, const char** name) {
  return guarded([&] {
    require(session, "session");
    require(name, "name");
    if (index >= session->stage_names.size()) invalid_argument("stage index out of range");
    *name = session->stage_names[index].c_str();
  });
}

ep_status* ep_session_input_count(const ep_session* session, const char* stage, size_t* count) {
  return guarded([&] {
    require(session, "session");
    require(count, "count");
    *count = edgepack::capi::described(session, stage, true).size();
  });
}

ep_status* ep_session_input_info(const ep_session* session, const char* stage, size_t index,
                                 ep_tensor_info* info) {
  return guarded([&] {
    require(session, "session");
    require(info, "info");
    const auto& list = edgepack::capi::described(session, stage, true);
    if (index >= list.size()) invalid_argument("input index out of range");
    edgepack::capi::fill_info(list[index], info);
  });
}

ep_status* ep_session_output_count(const ep_session* session, const char* stage, size_t* count) {
  return guarded([&] {
    require(session, "session");
    require(count, "count");
    *count = edgepack::capi::described(session, stage, false).size();
  });
}

ep_status* ep_session_output_info(const ep_session* session, const char* stage, size_t index,
                                  ep_tensor_info* info) {
  return guarded([&] {
    require(session, "session");
    require(info, "info");
    const auto& list = edgepack::capi::described(session, stage, false);
    if (index >= list.size()) invalid_argument("output index out of range");
    edgepack::capi::fill_info(list[index], info);
  });
}

ep_status* ep_session_set_tensor(ep_session* session, const char* stage, const char* name,
                                 ep_dtype dtype, const int64_t* shape, size_t rank,
                                 const void* data, size_t bytes) {
  return edgepack::capi::place_tensor(session, stage, name, dtype, shape, rank, data, bytes, false);
}

ep_status* ep_session_bind_tensor(ep_session* session, const char* stage, const char* name,
                                  ep_dtype dtype, const int64_t* shape, size_t rank,
                                  const void* data, size_t bytes) {
  return edgepack::capi::place_tensor(session, stage, name, dtype, shape, rank, data, bytes, true);
}

ep_status* ep_session_set_image(ep_session* session, const char* stage, const char* name,
                                const ep_image* image, uint32_t flags) {
  return guarded([&] {
    using edgepack::capi::PixelFormat;
    require(session, "session");
    require(name, "name");
    require(image, "image");
    if (flags != 0) invalid_argument("flags must be 0");
    if (image->reserved != 0) invalid_argument("image.reserved must be 0");
    if (image->format < EP_PIXEL_RGB8 || image->format > EP_PIXEL_BGRA8)
      invalid_argument("image.format is not an ep_pixel_format");
    edgepack::capi::prepare(session);
    const edgepack::TensorInfo* info = nullptr;
    for (const auto& t : edgepack::capi::described(session, stage, true))
      if (t.name == name) info = &t;
    if (info == nullptr)
      throw edgepack::Error(edgepack::ErrorCode::kNotFound,
                            std::string("no input '") + name + "' to set an image into");
    const std::string order = edgepack::capi::pixel_order(session, stage, name);
    if (order.empty())
      throw edgepack::Error(edgepack::ErrorCode::kUnsupported,
                            std::string("input '") + name +
                                "' has no preprocess pixel_format: "
                                "set it with ep_session_set_tensor");
    // HWC, or NHWC with batch 1.
    const std::vector<int64_t>& shape = info->shape;
    const size_t r = shape.size();
    const int channels = edgepack::capi::channels_of(order);
    if (info->dtype != edgepack::DType::kUInt8 || r < 3 || r > 4 || (r == 4 && shape[0] != 1) ||
        shape[r - 1] != channels)
      throw edgepack::Error(edgepack::ErrorCode::kUnsupported,
                            std::string("input '") + name + "' is not a uint8 HWC image of " +
                                std::to_string(channels) + " channel(s): expected " +
                                edgepack::capi::expected_text(*info));
    std::vector<int64_t> frame_shape = shape;
    if (!info->size_max.empty()) {  // any size within the bounds (rank 3: HWC)
      const auto& lo = info->size_min;
      const auto& hi = info->size_max;
      if (image->width < lo[1] || image->width > hi[1] || image->height < lo[0] ||
          image->height > hi[0])
        invalid_argument("image is " + std::to_string(image->width) + "x" +
                         std::to_string(image->height) + ", input '" + name + "' accepts " +
                         std::to_string(lo[1]) + "x" + std::to_string(lo[0]) + " to " +
                         std::to_string(hi[1]) + "x" + std::to_string(hi[0]) + " (width x height)");
      frame_shape[0] = image->height;
      frame_shape[1] = image->width;
    } else if (image->width != shape[r - 2] || image->height != shape[r - 3]) {
      invalid_argument("image is " + std::to_string(image->width) + "x" +
                       std::to_string(image->height) + ", input '" + name + "' expects " +
                       std::to_string(shape[r - 2]) + "x" + std::to_string(shape[r - 3]) +
                       " (width x height)");
    }
    edgepack::capi::Frame frame{static_cast<PixelFormat>(image->format),
                                image->width,
                                image->height,
                                {static_cast<const uint8_t*>(image->planes[0]),
                                 static_cast<const uint8_t*>(image->planes[1])},
                                {image->strides[0], image->strides[1]}};
    std::vector<uint8_t> pixels(static_cast<size_t>(image->width) *
                                static_cast<size_t>(image->height) * static_cast<size_t>(channels));
    edgepack::capi::convert_frame(frame, order, pixels.data());
    session->pipeline->set_input(edgepack::capi::stage_arg(stage), name, edgepack::DType::kUInt8,
                                 frame_shape, pixels.data(), pixels.size());
    session->inputs_set.insert(edgepack::capi::input_key(stage, name));
  });
}

ep_status* ep_session_get_tensor(ep_session* session, const char* stage, const char* name,
                                 ep_tensor* tensor) {
  return guarded([&] { edgepack::capi::get_output(session, stage, name, nullptr, tensor); });
}

ep_status* ep_session_get_tensor_typed(ep_session* session, const char* stage, const char* name,
                                       ep_dtype dtype, ep_tensor* tensor) {
  return guarded([&] {
    const edgepack::DType want = edgepack::capi::checked_dtype(dtype);
    edgepack::capi::get_output(session, stage, name, &want, tensor);
  });
}

ep_status* ep_session_run(ep_session* session, const char* stage) {
  return guarded([&] {
    require(session, "session");
    edgepack::capi::prepare(session);
    edgepack::capi::check_run_inputs(session, stage);
    session->views.clear();  // borrowed output pointers end here, as documented
    // A bound input is this run's only (the pipeline unbinds it however the run ends): set or
    // bind it again before the next run. After a run that read one, a run of one stage needs
    // that stage's inputs set: the stages read the caller's memory where it lay.
    struct Unbound {
      ep_session* s;
      ~Unbound() {
        if (s->inputs_bound.empty()) return;
        for (const std::string& key : s->inputs_bound) s->inputs_set.erase(key);
        s->inputs_bound.clear();
        s->stages_fed = false;
      }
    } unbound{session};
    const bool bound = !session->inputs_bound.empty();
    session->pipeline->run(edgepack::capi::stage_arg(stage));
    session->timings = session->pipeline->timings();
    if (stage == nullptr) {
      session->pipeline_ran = true;
      session->stages_fed = !bound;
    } else {
      session->stages_ran.insert(stage);
    }
  });
}

ep_status* ep_session_label_count(const ep_session* session, const char* model, size_t* count) {
  return guarded([&] {
    require(session, "session");
    require(count, "count");
    *count = edgepack::capi::labels_of(session, model).size();
  });
}

ep_status* ep_session_label(const ep_session* session, const char* model, size_t index,
                            const char** label) {
  return guarded([&] {
    require(session, "session");
    require(label, "label");
    const auto& list = edgepack::capi::labels_of(session, model);
    if (index >= list.size()) invalid_argument("label index out of range");
    *label = list[index].c_str();
  });
}

ep_status* ep_session_golden_input(ep_session* session, const char* stage, const char* name,
                                   ep_tensor* tensor) {
  return guarded([&] {
    require(session, "session");
    require(name, "name");
    require(tensor, "tensor");
    const std::string key = (stage == nullptr ? std::string() : std::string(stage)) + "\n" + name;
    auto it = session->golden.find(key);
    if (it == session->golden.end())
      it = session->golden.emplace(key, edgepack::capi::decode_golden_input(session, stage, name))
               .first;
    const ep_session::GoldenInput& g = it->second;
    tensor->dtype = g.dtype;
    tensor->flags = 0;
    tensor->rank = g.shape.size();
    tensor->shape = g.shape.data();
    tensor->data = g.data.data();
    tensor->bytes = g.data.size();
  });
}

ep_status* ep_set_log_callback(ep_log_fn callback, void* user_data) {
  return guarded([&] { edgepack::set_log_sink(callback, user_data); });
}

ep_status* ep_session_timing_count(const ep_session* session, size_t* count) {
  return guarded([&] {
    require(session, "session");
    require(count, "count");
    *count = session->timings.size();
  });
}

ep_status* ep_session_stage_timing(const ep_session* session, size_t index, const char** stage,
                                   double* ms, int32_t* runs) {
  return guarded([&] {
    require(session, "session");
    if (index >= session->timings.size()) invalid_argument("timing index out of range");
    const edgepack::StageTiming& t = session->timings[index];
    if (stage != nullptr) *stage = t.stage.c_str();
    if (ms != nullptr) *ms = t.ms;
    if (runs != nullptr) *runs = t.runs;
  });
}

ep_status* ep_session_set_profiling(ep_session* session, int enable) {
  return guarded([&] {
    require(session, "session");
    edgepack::capi::prepare(session);
    session->pipeline->set_profiling(enable != 0);
  });
}

ep_status* ep_session_profile_json(ep_session* session, const char** json) {
  return guarded([&] {
    require(session, "session");
    require(json, "json");
    session->profile = session->pipeline->profile_json();
    *json = session->profile.c_str();
  });
}

ep_status* ep_session_load_timing(const ep_session* session, double* verify_ms, double* decrypt_ms,
                                  double* prepare_ms) {
  return guarded([&] {
    require(session, "session");
    if (verify_ms != nullptr) *verify_ms = session->verify_ms;
    if (decrypt_ms != nullptr) *decrypt_ms = session->decrypt_ms;
    if (prepare_ms != nullptr) *prepare_ms = session->prepare_ms;
  });
}

ep_status* ep_session_input_size_bounds(const ep_session* session, const char* stage,
                                        const char* name, int64_t min_hw[2], int64_t max_hw[2]) {
  return guarded([&] {
    require(session, "session");
    require(name, "name");
    require(min_hw, "min_hw");
    require(max_hw, "max_hw");
    for (const auto& t : edgepack::capi::described(session, stage, true)) {
      if (t.name != name) continue;
      if (t.shape.size() < 2)
        invalid_argument("input '" + t.name + "' has rank " + std::to_string(t.shape.size()) +
                         ": no height and width");
      const bool bounded = !t.size_max.empty();
      const size_t h = t.shape.size() == 4 ? 1 : 0;  // NHWC with batch 1, else HW...
      const int64_t lo[2] = {bounded ? t.size_min[0] : t.shape[h],
                             bounded ? t.size_min[1] : t.shape[h + 1]};
      const int64_t hi[2] = {bounded ? t.size_max[0] : t.shape[h],
                             bounded ? t.size_max[1] : t.shape[h + 1]};
      min_hw[0] = lo[0], min_hw[1] = lo[1], max_hw[0] = hi[0], max_hw[1] = hi[1];
      return;
    }
    throw edgepack::Error(edgepack::ErrorCode::kNotFound, std::string("no input '") + name + "'");
  });
}

}  // extern "C"

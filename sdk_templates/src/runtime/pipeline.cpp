// SPDX-License-Identifier: Apache-2.0
// Pipeline: the manifest's stages (one GraphInstance each) and steps (docs/manifest.md).
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>

#include "common/json.h"
#include "runtime/frame_input.h"
#include "runtime/graph.h"
#include "runtime/interpreter.h"
#include "runtime/kernels/threadpool.h"
#include "runtime/runtime.h"

namespace edgepack {
namespace {

[[noreturn]] void bad_manifest(const std::string& why) {
  throw Error(ErrorCode::kInvalidArgument, "manifest: " + why);
}

DType parse_dtype(const std::string& s, const std::string& path) {
  if (s == "float32") return DType::kFloat32;
  if (s == "uint8") return DType::kUInt8;
  if (s == "int32") return DType::kInt32;
  if (s == "int64") return DType::kInt64;
  bad_manifest(path + ": unknown dtype '" + s + "'");
}

TensorInfo parse_info(const json::Value& v, const std::string& path) {
  TensorInfo t;
  t.name = v.at("name", path).as_string(path + ".name");
  t.dtype = parse_dtype(v.at("dtype", path).as_string(path + ".dtype"), path + ".dtype");
  for (const auto& d : v.at("shape", path).as_array(path + ".shape")) {
    const int64_t n = d.as_int(path + ".shape[]");
    if (n < 0) bad_manifest(path + ".shape: negative dimension");
    t.shape.push_back(n);
  }
  if (const json::Value* dyn = v.find("dynamic_dim0")) t.dynamic_dim0 = dyn->as_bool(path);
  parse_size_bounds(v, path, t);
  return t;
}

size_t byte_size(DType d, const std::vector<int64_t>& shape) {
  size_t n = dtype_size(d);
  for (int64_t s : shape) n *= static_cast<size_t>(s);
  return n;
}

// A tensor that lives outside the stage graphs: pipeline inputs and stacked "map" outputs.
struct Buffer {
  TensorInfo info;
  std::vector<int64_t> shape;  // actual
  std::vector<uint8_t> data;
  const uint8_t* bound = nullptr;  // the caller's memory, read in place by the next run (bind)
};

struct Stage {
  std::string name;
  std::unique_ptr<GraphInstance> graph;
  std::vector<TensorInfo> inputs, outputs;
  std::vector<StageTiming> timing;  // one entry, named: timings() after a run of this stage
};

// Where a tensor reference reads from, resolved at prepare so that run looks nothing up: a
// pipeline input or stacked map output (buffer), or a stage graph's output (tensor).
struct Source {
  const Buffer* buffer = nullptr;
  const Tensor* tensor = nullptr;
  const GraphInstance* graph = nullptr;  // the graph that owns `tensor`

  DType dtype() const { return buffer ? buffer->info.dtype : tensor->dtype; }
  bool dynamic_dim0() const { return buffer ? buffer->info.dynamic_dim0 : tensor->dynamic_dim0; }
  // Dimension 0: as declared (the bound when dynamic), and as of the last run.
  int64_t bound_rows() const {
    if (buffer) return buffer->info.shape.empty() ? 0 : buffer->info.shape[0];
    return tensor->rank ? tensor->static_shape[0] : 0;
  }
  int64_t rows() const {
    if (buffer) return buffer->shape.empty() ? 0 : buffer->shape[0];
    return tensor->rank ? tensor->shape[0] : 0;
  }
  size_t bytes() const {
    return buffer ? byte_size(buffer->info.dtype, buffer->shape) : tensor->bytes();
  }
  const uint8_t* data() const {
    if (buffer) return buffer->bound ? buffer->bound : buffer->data.data();
    return static_cast<const uint8_t*>(tensor->data);
  }
  // Bytes of memory behind data(): the buffer (the caller's: the bound bytes), or the tensor's
  // static size.
  size_t allocated() const {
    if (buffer) return buffer->bound ? bytes() : buffer->data.size();
    return static_cast<size_t>(tensor->static_numel()) * dtype_size(tensor->dtype);
  }
};

struct Binding {
  std::string input;      // the stage's input
  std::string ref;        // the tensor reference bound to it (manifest)
  Tensor* dst = nullptr;  // the stage graph's input tensor (prepare)
  uint32_t index = 0;     // its index in the stage graph (prepare)
  Source src;             // (prepare)
  // The stage may read the source where it lies (prepare): not an output of its own graph,
  // which the run would overwrite while reading it.
  bool in_place = false;
};

// A map step's output: every row's result, stacked along dimension 0.
struct Stacked {
  Buffer rows;
  const Tensor* out = nullptr;  // the stage graph's output tensor (prepare)
};

struct Step {
  Stage* stage = nullptr;
  std::vector<Binding> bind;
  bool map = false;
  std::map<std::string, Stacked> stacked;  // map steps: output name -> stacked rows
};

class PipelineImpl : public Pipeline {
 public:
  PipelineImpl(const std::string& manifest_json, const SectionSource& sections,
               const RuntimeOptions& options);
  void prepare() override;
  std::vector<std::string> stage_names() const override;
  std::vector<TensorInfo> inputs(const std::string& stage) const override;
  std::vector<TensorInfo> outputs(const std::string& stage) const override;
  void set_input(const std::string& stage, const std::string& name, DType dtype,
                 const std::vector<int64_t>& shape, const void* data, size_t bytes) override {
    place_input(stage, name, dtype, shape, data, bytes, false);
  }
  void bind_input(const std::string& stage, const std::string& name, DType dtype,
                  const std::vector<int64_t>& shape, const void* data, size_t bytes) override {
    place_input(stage, name, dtype, shape, data, bytes, true);
  }
  TensorView output(const std::string& stage, const std::string& name) const override;
  void run(const std::string& stage) override;
  const std::vector<StageTiming>& timings() const override { return *timings_; }
  void set_profiling(bool on) override;
  std::string profile_json() const override;

 private:
  Stage& stage(const std::string& name);
  const Stage& stage(const std::string& name) const;
  // Where a tensor reference reads from; before prepare a map step's output is its stage's
  // per-row output (the stacked buffers do not exist yet).
  Source source(const std::string& ref) const;
  // set_input (a copy) or bind_input (`data` itself until the next run ends: unbind()).
  void place_input(const std::string& stage, const std::string& name, DType dtype,
                   const std::vector<int64_t>& shape, const void* data, size_t bytes, bool bind);
  void unbind();
  TensorView resolve(const std::string& ref) const;
  void feed(Stage& st, const Binding& b, int64_t row);
  // Writes a bounded input's actual [height, width] into its "<input>#size" buffer.
  void set_frame_size(const std::string& input, const std::vector<int64_t>& shape);
  // Runs one step; returns its executions (rows of a map step).
  int run_step(Step& step);

  std::unique_ptr<ThreadPool> pool_;
  std::vector<std::unique_ptr<Stage>> stages_;
  std::map<std::string, std::string> model_stage_;  // model name -> its own stage
  std::map<std::string, Buffer> inputs_;
  std::vector<std::string> input_order_;
  // Inputs bound to the caller's memory until the next run ends: pipeline input buffers, and
  // stage graph inputs (stage, index).
  std::vector<Buffer*> bound_buffers_;
  std::vector<std::pair<Stage*, uint32_t>> bound_stage_inputs_;
  std::vector<Step> steps_;
  std::vector<std::pair<std::string, std::string>> outputs_;  // public name -> reference
  std::vector<StageTiming> step_timings_;                     // one per step, named at prepare
  const std::vector<StageTiming> no_timings_;
  const std::vector<StageTiming>* timings_ = &no_timings_;  // of the last run
  bool prepared_ = false;
  int profile_runs_ = 0;
  bool profiling_ = false;
};

TensorView view_of(const Tensor& t, const TensorInfo& info) {
  TensorView v;
  v.info = info;
  v.shape.assign(t.shape, t.shape + t.rank);
  v.data = t.data;
  v.bytes = t.bytes();
  return v;
}

TensorInfo info_of(const Tensor& t) {
  TensorInfo i;
  i.name = t.name;
  i.dtype = t.dtype;
  i.shape.assign(t.static_shape, t.static_shape + t.rank);
  i.dynamic_dim0 = t.dynamic_dim0;
  return i;
}

PipelineImpl::PipelineImpl(const std::string& manifest_json, const SectionSource& sections,
                           const RuntimeOptions& options) {
  const json::Value m = json::parse(manifest_json);
  if (!m.is_object()) bad_manifest("not an object");
  if (m.at("schema", "").as_string("schema") != "edgepack.manifest/1")
    bad_manifest("unknown schema '" + m.at("schema", "").str + "'");
  const int threads = usable_threads(options.threads, options.cpus);
  pool_ = std::make_unique<ThreadPool>(threads, options.cpus);
  const auto backends = resolve_backends(options.backend_preference);
  std::map<std::string, std::vector<std::shared_ptr<Backend>>> placed_backends;
  for (const auto& sv : m.at("stages", "").as_array("stages")) {
    auto st = std::make_unique<Stage>();
    st->name = sv.at("name", "stages[]").as_string("stages[].name");
    const std::string path = "stages[" + st->name + "]";
    const std::string section = sv.at("graph", path).as_string(path + ".graph");
    size_t size = 0;
    const uint8_t* bytes = sections.section(section, &size);
    // A stage placed on a processor with a backend plugin ("backend": "opencl" for placement
    // gpu on hi3559a) tries it first, unless the caller chose backends itself.
    const json::Value* placed = sv.find("backend");
    auto stage_backends = backends;
    if (placed && options.backend_preference.empty()) {
      const std::string& name = placed->as_string(path + ".backend");
      auto it = placed_backends.find(name);  // one load per plugin
      if (it == placed_backends.end())
        it = placed_backends.emplace(name, resolve_backends({name})).first;
      stage_backends = it->second;
    }
    st->graph = std::make_unique<GraphInstance>(load_graph(bytes, size), stage_backends,
                                                pool_.get(), threads);
    for (const auto& t : sv.at("inputs", path).as_array(path + ".inputs"))
      st->inputs.push_back(parse_info(t, path + ".inputs[]"));
    for (const auto& t : sv.at("outputs", path).as_array(path + ".outputs"))
      st->outputs.push_back(parse_info(t, path + ".outputs[]"));
    for (const auto& t : st->inputs)
      if (st->graph->input_index(t.name) < 0)
        bad_manifest(path + ": graph has no input '" + t.name + "'");
    for (const auto& t : st->outputs)
      if (st->graph->output_index(t.name) < 0)
        bad_manifest(path + ": graph has no output '" + t.name + "'");
    if (const json::Value* kind = sv.find("kind"))
      if (kind->is_string() && kind->str == "model")
        if (const json::Value* model = sv.find("model"))
          if (model->is_string()) model_stage_[model->str] = st->name;
    for (const auto& other : stages_)
      if (other->name == st->name) bad_manifest("duplicate stage '" + st->name + "'");
    st->timing.push_back({st->name, 0.0, 0});
    stages_.push_back(std::move(st));
  }
  const json::Value& p = m.at("pipeline", "");
  for (const auto& iv : p.at("inputs", "pipeline").as_array("pipeline.inputs")) {
    Buffer b;
    b.info = parse_info(iv, "pipeline.inputs[]");
    input_order_.push_back(b.info.name);
    inputs_[b.info.name] = std::move(b);
  }
  std::map<std::string, bool> produced;  // references available so far
  for (const auto& name : input_order_) {
    produced[name] = true;
    if (inputs_.at(name).info.size_max.empty()) continue;
    Buffer size;  // "<input>#size": the frame's [height, width], set with the frame
    size.info.name = name + kFrameSizeSuffix;
    size.info.dtype = DType::kInt64;
    size.info.shape = {2};
    inputs_[size.info.name] = std::move(size);
    produced[name + kFrameSizeSuffix] = true;
  }
  for (const auto& sv : p.at("steps", "pipeline").as_array("pipeline.steps")) {
    Step step;
    const std::string sname =
        sv.at("stage", "pipeline.steps[]").as_string("pipeline.steps[].stage");
    step.stage = &stage(sname);
    const std::string path = "pipeline.steps[" + sname + "]";
    if (const json::Value* mv = sv.find("map")) step.map = mv->as_bool(path + ".map");
    const json::Value& bind = sv.at("bind", path);
    if (!bind.is_object()) bad_manifest(path + ".bind: expected an object");
    for (const auto& kv : bind.object) {
      const std::string ref = kv.second.as_string(path + ".bind." + kv.first);
      if (!produced.count(ref))
        bad_manifest(path + ".bind." + kv.first + ": '" + ref + "' is not produced earlier");
      if (step.stage->graph->input_index(kv.first) < 0)
        bad_manifest(path + ".bind: stage has no input '" + kv.first + "'");
      Binding b;
      b.input = kv.first;
      b.ref = ref;
      step.bind.push_back(std::move(b));
    }
    for (const auto& t : step.stage->inputs) {
      bool bound = false;
      for (const auto& b : step.bind) bound = bound || b.input == t.name;
      if (!bound) bad_manifest(path + ": input '" + t.name + "' is not bound");
    }
    for (const auto& t : step.stage->outputs) produced[sname + ":" + t.name] = true;
    steps_.push_back(std::move(step));
  }
  const json::Value& outs = p.at("outputs", "pipeline");
  if (!outs.is_object()) bad_manifest("pipeline.outputs: expected an object");
  for (const auto& kv : outs.object) {
    const std::string ref = kv.second.as_string("pipeline.outputs." + kv.first);
    if (!produced.count(ref))
      bad_manifest("pipeline.outputs." + kv.first + ": unknown '" + ref + "'");
    outputs_.emplace_back(kv.first, ref);
  }
}

Stage& PipelineImpl::stage(const std::string& name) {
  return const_cast<Stage&>(static_cast<const PipelineImpl*>(this)->stage(name));
}

const Stage& PipelineImpl::stage(const std::string& name) const {
  auto it = model_stage_.find(name);
  const std::string& n = it != model_stage_.end() ? it->second : name;
  for (const auto& s : stages_)
    if (s->name == n) return *s;
  throw Error(ErrorCode::kNotFound, "unknown stage '" + name + "'");
}

void PipelineImpl::prepare() {
  if (prepared_) return;
  for (auto& s : stages_) s->graph->prepare();
  for (auto& kv : inputs_) {
    Buffer& b = kv.second;
    b.data.assign(byte_size(b.info.dtype, frame_capacity(b.info)), 0);
    b.shape = b.info.shape;
  }
  for (const auto& name : input_order_)  // until the first frame: the nominal size
    if (!inputs_.at(name).info.size_max.empty()) set_frame_size(name, inputs_.at(name).shape);
  // Steps in order: a binding reads pipeline inputs or outputs of earlier steps (the stacked
  // buffers of earlier map steps exist by the time a later step's bindings are resolved).
  step_timings_.clear();
  for (Step& step : steps_) {
    Stage& st = *step.stage;
    for (Binding& b : step.bind) {
      b.index = static_cast<uint32_t>(st.graph->input_index(b.input));
      b.dst = &st.graph->tensor(b.index);
      b.src = source(b.ref);
      b.in_place = b.src.graph != st.graph.get();
    }
    step_timings_.push_back({st.name, 0.0, 0});
    if (!step.map) continue;
    // Stacked bound: the mapped inputs' bound rows, each row one batch-1 run.
    int64_t bound = 0;
    for (const Binding& b : step.bind)
      if (b.src.dynamic_dim0()) bound = std::max<int64_t>(bound, b.src.bound_rows());
    if (bound == 0) bad_manifest("map step '" + st.name + "' has no dynamic input");
    for (const auto& out : st.outputs) {
      Stacked s;
      Buffer& b = s.rows;
      b.info = out;
      if (b.info.shape.empty()) bad_manifest("map step output '" + out.name + "' has rank 0");
      b.info.shape[0] = bound * out.shape[0];
      b.info.dynamic_dim0 = true;
      b.info.name = st.name + ":" + out.name;
      b.data.assign(byte_size(b.info.dtype, b.info.shape), 0);
      b.shape = b.info.shape;
      s.out = &st.graph->tensor(static_cast<uint32_t>(st.graph->output_index(out.name)));
      step.stacked[out.name] = std::move(s);
    }
  }
  timings_ = &no_timings_;
  prepared_ = true;
}

std::vector<std::string> PipelineImpl::stage_names() const {
  std::vector<std::string> out;
  for (const auto& s : stages_) out.push_back(s->name);
  return out;
}

std::vector<TensorInfo> PipelineImpl::inputs(const std::string& stage_name) const {
  if (stage_name.empty()) {
    std::vector<TensorInfo> out;
    for (const auto& n : input_order_) out.push_back(inputs_.at(n).info);
    return out;
  }
  return stage(stage_name).inputs;
}

std::vector<TensorInfo> PipelineImpl::outputs(const std::string& stage_name) const {
  if (stage_name.empty()) {
    std::vector<TensorInfo> out;
    for (const auto& o : outputs_) {
      TensorInfo i = resolve(o.second).info;
      i.name = o.first;
      out.push_back(i);
    }
    return out;
  }
  return stage(stage_name).outputs;
}

void PipelineImpl::place_input(const std::string& stage_name, const std::string& name, DType dtype,
                               const std::vector<int64_t>& shape, const void* data, size_t bytes,
                               bool bind) {
  prepare();
  TensorInfo info;
  Buffer* buffer = nullptr;
  std::vector<int64_t>* actual = nullptr;
  Stage* st = nullptr;
  Tensor* t = nullptr;
  int idx = -1;
  if (stage_name.empty()) {
    auto it = inputs_.find(name);
    if (it == inputs_.end())
      throw Error(ErrorCode::kNotFound, "unknown pipeline input '" + name + "'");
    info = it->second.info;
    buffer = &it->second;
    actual = &it->second.shape;
  } else {
    st = &stage(stage_name);
    idx = st->graph->input_index(name);
    if (idx < 0)
      throw Error(ErrorCode::kNotFound, "stage '" + stage_name + "' has no input '" + name + "'");
    t = &st->graph->tensor(static_cast<uint32_t>(idx));
    info = info_of(*t);
  }
  if (dtype != info.dtype)
    throw Error(ErrorCode::kInvalidArgument, "input '" + name + "': dtype " + dtype_name(dtype) +
                                                 ", expected " + dtype_name(info.dtype));
  if (shape.size() != info.shape.size())
    throw Error(ErrorCode::kInvalidArgument, "input '" + name + "': wrong rank");
  if (!info.size_max.empty() && !frame_shape_ok(info, shape))
    throw Error(ErrorCode::kInvalidArgument,
                "input '" + name + "': shape outside its bounds" + bounds_text(info));
  for (size_t d = 0; d < shape.size(); ++d) {
    const bool ok =
        (d < 2 && !info.size_max.empty()) ||
        ((d == 0 && info.dynamic_dim0) ? shape[d] <= info.shape[d] : shape[d] == info.shape[d]);
    if (!ok || shape[d] < 0)
      throw Error(ErrorCode::kInvalidArgument, "input '" + name + "': shape does not match");
  }
  if (bytes != byte_size(dtype, shape) || (bytes && !data))
    throw Error(ErrorCode::kInvalidArgument, "input '" + name + "': byte size does not match");
  const auto* from = static_cast<const uint8_t*>(data);
  if (buffer != nullptr) {
    buffer->bound = nullptr;
    if (bind && bytes) {
      buffer->bound = from;
      bound_buffers_.push_back(buffer);
    } else if (bytes) {
      std::memcpy(buffer->data.data(), from, bytes);
    }
  } else {
    // The stage's own slot, or the caller's memory when it is whole and aligned for the dtype
    // (a dynamic dimension 0 smaller than its bound, or an odd address, is copied instead).
    const auto index = static_cast<uint32_t>(idx);
    const bool in_place = bind &&
                          bytes == static_cast<size_t>(t->static_numel()) * dtype_size(dtype) &&
                          reinterpret_cast<uintptr_t>(from) % dtype_size(dtype) == 0;
    if (in_place) {
      st->graph->point_input(index, from);
      bound_stage_inputs_.emplace_back(st, index);
    } else {
      void* dst = st->graph->point_input(index, nullptr);  // its own slot again
      if (bytes) std::memcpy(dst, from, bytes);
    }
  }
  if (actual) *actual = shape;
  if (!info.size_max.empty()) set_frame_size(name, shape);
  if (t) t->shape[0] = shape.empty() ? 0 : shape[0];
}

Source PipelineImpl::source(const std::string& ref) const {
  Source src;
  const size_t colon = ref.find(':');
  if (colon == std::string::npos) {
    src.buffer = &inputs_.at(ref);
    return src;
  }
  const std::string sname = ref.substr(0, colon), oname = ref.substr(colon + 1);
  for (const Step& step : steps_) {
    if (step.stage->name != sname || !step.map) continue;
    auto it = step.stacked.find(oname);
    if (it == step.stacked.end()) continue;
    src.buffer = &it->second.rows;
    return src;
  }
  const Stage& st = stage(sname);
  const int idx = st.graph->output_index(oname);
  if (idx < 0) throw Error(ErrorCode::kNotFound, "unknown tensor '" + ref + "'");
  src.tensor = &st.graph->tensor(static_cast<uint32_t>(idx));
  src.graph = st.graph.get();
  return src;
}

TensorView PipelineImpl::resolve(const std::string& ref) const {
  const Source src = source(ref);
  if (src.tensor) return view_of(*src.tensor, info_of(*src.tensor));
  TensorView v;
  v.info = src.buffer->info;
  v.shape = src.buffer->shape;
  v.data = const_cast<uint8_t*>(src.data());
  v.bytes = src.bytes();
  return v;
}

TensorView PipelineImpl::output(const std::string& stage_name, const std::string& name) const {
  if (stage_name.empty()) {
    for (const auto& o : outputs_)
      if (o.first == name) {
        TensorView v = resolve(o.second);
        v.info.name = name;
        return v;
      }
    throw Error(ErrorCode::kNotFound, "unknown pipeline output '" + name + "'");
  }
  const Stage& st = stage(stage_name);
  const int idx = st.graph->output_index(name);
  if (idx < 0)
    throw Error(ErrorCode::kNotFound, "stage '" + stage_name + "' has no output '" + name + "'");
  const Tensor& t = st.graph->tensor(static_cast<uint32_t>(idx));
  return view_of(t, info_of(t));
}

// Gives the stage's input the bound tensor (or its row `row` when row >= 0): in place (the input
// points at it, GraphInstance::point_input) when the binding allows it and the source's memory
// covers the input's static size at an address aligned for its dtype; otherwise a copy into the
// input's own slot. A bounded frame smaller than the stage's buffer is always placed by a copy.
void PipelineImpl::feed(Stage& st, const Binding& b, int64_t row) {
  Tensor& t = *b.dst;
  const std::string& input = b.input;
  if (t.dtype != b.src.dtype())
    throw Error(ErrorCode::kRuntimeError, "stage '" + st.name + "' input '" + input + "': dtype " +
                                              dtype_name(b.src.dtype()) + " bound, expected " +
                                              dtype_name(t.dtype));
  if (b.src.buffer != nullptr && !b.src.buffer->info.size_max.empty() && row < 0 &&
      t.rank == 3) {  // a frame of the app's size into the stage's largest-size buffer
    const std::vector<int64_t>& hwc = b.src.buffer->shape;
    if (t.static_shape[0] < hwc[0] || t.static_shape[1] < hwc[1] || t.static_shape[2] != hwc[2])
      throw Error(ErrorCode::kRuntimeError, "stage '" + st.name + "' input '" + input +
                                                "': smaller than the bounded frame it reads");
    if (t.static_shape[0] != hwc[0] || t.static_shape[1] != hwc[1]) {
      uint8_t* dst = static_cast<uint8_t*>(st.graph->point_input(b.index, nullptr));
      place_frame(b.src.data(), hwc[0], hwc[1], static_cast<size_t>(hwc[2]) * dtype_size(t.dtype),
                  dst, t.static_shape[0], t.static_shape[1]);
      return;
    }  // a frame of the stage's own size: as any other tensor
  }
  size_t bytes = b.src.bytes();
  const uint8_t* from = b.src.data();
  int64_t rows = b.src.rows();
  size_t offset = 0;
  if (row >= 0) {
    bytes = rows ? bytes / static_cast<size_t>(rows) : 0;
    offset = bytes * static_cast<size_t>(row);
    from += offset;
    rows = t.rank ? t.static_shape[0] : 0;
  }
  const size_t capacity = static_cast<size_t>(t.static_numel()) * dtype_size(t.dtype);
  if (bytes > capacity || (!t.dynamic_dim0 && bytes != capacity))
    throw Error(ErrorCode::kRuntimeError, "stage '" + st.name + "' input '" + input +
                                              "': bound tensor has " + std::to_string(bytes) +
                                              " bytes, expected " + std::to_string(capacity));
  const bool in_place = b.in_place && b.src.allocated() >= offset + capacity &&
                        reinterpret_cast<uintptr_t>(from) % dtype_size(t.dtype) == 0;
  if (in_place) {
    st.graph->point_input(b.index, from);
  } else {
    void* dst = st.graph->point_input(b.index, nullptr);
    if (bytes) std::memcpy(dst, from, bytes);
  }
  if (t.rank) t.shape[0] = t.dynamic_dim0 ? rows : t.static_shape[0];
}

void PipelineImpl::set_frame_size(const std::string& input, const std::vector<int64_t>& shape) {
  Buffer& size = inputs_.at(input + kFrameSizeSuffix);
  size.data.resize(2 * sizeof(int64_t));
  std::memcpy(size.data.data(), shape.data(), 2 * sizeof(int64_t));
  size.shape = {2};
}

int PipelineImpl::run_step(Step& step) {
  Stage& st = *step.stage;
  if (!step.map) {
    for (const Binding& b : step.bind) feed(st, b, -1);
    st.graph->run();
    return 1;
  }
  int64_t rows = -1;
  for (const Binding& b : step.bind)
    if (b.src.dynamic_dim0()) rows = rows < 0 ? b.src.rows() : std::min(rows, b.src.rows());
  for (auto& kv : step.stacked) kv.second.rows.shape[0] = 0;
  for (int64_t r = 0; r < rows; ++r) {
    for (const Binding& b : step.bind) feed(st, b, b.src.dynamic_dim0() ? r : -1);
    st.graph->run();
    for (auto& kv : step.stacked) {
      const Tensor& out = *kv.second.out;
      Buffer& b = kv.second.rows;
      const size_t row_bytes = out.bytes();
      const size_t offset =
          static_cast<size_t>(r) * static_cast<size_t>(out.static_numel()) * dtype_size(out.dtype);
      if (offset + row_bytes > b.data.size())
        throw Error(ErrorCode::kRuntimeError, "map output '" + kv.first + "' overflows its bound");
      std::memcpy(b.data.data() + offset, out.data, row_bytes);
      b.shape[0] = (r + 1) * out.static_shape[0];
    }
  }
  return rows < 0 ? 0 : static_cast<int>(rows);
}

void PipelineImpl::set_profiling(bool on) {
  prepare();
  profiling_ = on;
  profile_runs_ = 0;
  for (auto& st : stages_) st->graph->set_profiling(on);
}

std::string PipelineImpl::profile_json() const {
  std::string nodes, backends;
  double total = 0.0;
  for (const auto& st : stages_) {
    const std::string part = st->graph->profile_json(st->name);
    if (part.empty()) continue;
    nodes += (nodes.empty() ? "\n    " : ",\n    ") + part;
    backends +=
        (backends.empty() ? "\n    " : ",\n    ") + st->graph->profile_backends_json(st->name);
    total += st->graph->profile_total_ms();
  }
  char head[160];
  std::snprintf(head, sizeof head,
                "{\"schema\": \"edgepack.profile/1\", \"runs\": %d, \"total_ms\": %.6f, ",
                profile_runs_, total);
  return std::string(head) + "\"nodes\": [" + nodes + (nodes.empty() ? "" : "\n  ") +
         "], \"backends\": [" + backends + (backends.empty() ? "" : "\n  ") + "]}";
}

// Allocates nothing (runtime.h): bindings and timing records were made at prepare. Profiling
// keeps one sample per node and run, and so allocates as its sample lists grow.
void PipelineImpl::unbind() {
  for (Buffer* b : bound_buffers_) b->bound = nullptr;
  bound_buffers_.clear();
  for (const auto& [st, index] : bound_stage_inputs_) st->graph->point_input(index, nullptr);
  bound_stage_inputs_.clear();
}

void PipelineImpl::run(const std::string& stage_name) {
  prepare();
  // Bindings last for this run only, whether it succeeds or throws.
  struct Unbind {
    PipelineImpl* p;
    ~Unbind() { p->unbind(); }
  } unbind_after{this};
  timings_ = &no_timings_;
  if (profiling_) ++profile_runs_;
  using clock = std::chrono::steady_clock;
  if (!stage_name.empty()) {
    Stage& st = stage(stage_name);
    const auto t0 = clock::now();
    st.graph->run();
    st.timing[0].ms = std::chrono::duration<double, std::milli>(clock::now() - t0).count();
    st.timing[0].runs = 1;
    timings_ = &st.timing;
    return;
  }
  for (size_t i = 0; i < steps_.size(); ++i) {
    const auto t0 = clock::now();
    StageTiming& t = step_timings_[i];
    t.runs = run_step(steps_[i]);
    t.ms = std::chrono::duration<double, std::milli>(clock::now() - t0).count();
  }
  timings_ = &step_timings_;
}

}  // namespace

std::unique_ptr<Pipeline> Pipeline::load(const std::string& manifest_json,
                                         const SectionSource& sections,
                                         const RuntimeOptions& options) {
  return std::make_unique<PipelineImpl>(manifest_json, sections, options);
}

}  // namespace edgepack

// SPDX-License-Identifier: Apache-2.0
#include "runtime/interpreter.h"
#include "runtime/log.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

namespace edgepack {
namespace {

constexpr size_t kAlign = 64;
size_t align_up(size_t n) {
  return (n + kAlign - 1) / kAlign * kAlign;
}

// Attribute readers handed to plugins.
const NodeAttrs* as_attrs(const void* self) {
  return static_cast<const NodeAttrs*>(self);
}
int attr_int(const void* self, const char* name, int64_t* out) {
  const GraphAttr* a = as_attrs(self)->find(name);
  if (!a || a->type != AttrType::kInt) return 0;
  *out = a->i;
  return 1;
}
int attr_float(const void* self, const char* name, float* out) {
  const GraphAttr* a = as_attrs(self)->find(name);
  if (!a || a->type != AttrType::kFloat) return 0;
  *out = a->f;
  return 1;
}
int attr_ints(const void* self, const char* name, const int64_t** data, size_t* count) {
  const GraphAttr* a = as_attrs(self)->find(name);
  if (!a || a->type != AttrType::kInts) return 0;
  *data = a->ints;
  *count = a->count;
  return 1;
}
int attr_floats(const void* self, const char* name, const float** data, size_t* count) {
  const GraphAttr* a = as_attrs(self)->find(name);
  if (!a || a->type != AttrType::kFloats) return 0;
  *data = a->floats;
  *count = a->count;
  return 1;
}
int attr_string(const void* self, const char* name, const char** out) {
  const GraphAttr* a = as_attrs(self)->find(name);
  if (!a || a->type != AttrType::kString) return 0;
  *out = a->s.c_str();
  return 1;
}

int64_t numel(const Tensor* t) {
  if (t == nullptr) return 0;
  int64_t n = 1;
  for (int d = 0; d < t->rank; ++d) n *= t->shape[d];
  return n;
}

// Floating-point operations of one execution of a node (multiply and add counted as 2), from
// its actual shapes. Exact for the contraction ops; an estimate (about one operation per
// element, per window element for pools) for the rest, flagged by `*exact`.
double node_flops(const GraphNode& node, const std::vector<Tensor*>& in,
                  const std::vector<Tensor*>& out, bool* exact) {
  const std::string& op = node.op_type;
  const Tensor* x = in.empty() ? nullptr : in[0];
  const Tensor* w = in.size() > 1 ? in[1] : nullptr;
  const Tensor* y = out.empty() ? nullptr : out[0];
  *exact = true;
  if (op == "Conv" && w && w->rank >= 1 && w->shape[0] > 0)
    return 2.0 * static_cast<double>(numel(y)) * static_cast<double>(numel(w) / w->shape[0]);
  if (op == "ConvTranspose" && w && x && w->rank >= 1 && w->shape[0] > 0)
    return 2.0 * static_cast<double>(numel(x)) * static_cast<double>(numel(w) / w->shape[0]);
  if (op == "Gemm" && x && x->rank == 2) {
    const GraphAttr* ta = node.attrs.find("transA");
    const int64_t k = (ta && ta->type == AttrType::kInt && ta->i) ? x->shape[0] : x->shape[1];
    return 2.0 * static_cast<double>(numel(y)) * static_cast<double>(k);
  }
  if (op == "MatMul" && x && x->rank >= 1)
    return 2.0 * static_cast<double>(numel(y)) * static_cast<double>(x->shape[x->rank - 1]);
  *exact = false;
  if ((op == "MaxPool" || op == "AveragePool") && x && y && numel(y) > 0) {
    const GraphAttr* k = node.attrs.find("kernel_shape");
    double window = 1.0;
    if (k && k->type == AttrType::kInts)
      for (size_t i = 0; i < k->count; ++i) window *= static_cast<double>(k->ints[i]);
    return static_cast<double>(numel(y)) * window;
  }
  int64_t most = 0;
  for (const Tensor* t : in)
    if (t && !t->constant) most = std::max(most, numel(t));
  for (const Tensor* t : out) most = std::max(most, numel(t));
  return static_cast<double>(most);
}

double median_of(std::vector<double> v) {
  if (v.empty()) return 0.0;
  const size_t mid = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid), v.end());
  double m = v[mid];
  if (v.size() % 2 == 0)
    m = (m + *std::max_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid))) / 2;
  return m;
}

std::string json_str(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      o += '\\';
      o += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      o += buf;
    } else {
      o += c;
    }
  }
  return o + "\"";
}

std::string json_shapes(const std::vector<Tensor*>& ts) {
  std::string o = "[";
  for (size_t i = 0; i < ts.size(); ++i) {
    if (i) o += ", ";
    if (!ts[i]) {
      o += "null";
      continue;
    }
    o += "[";
    for (int d = 0; d < ts[i]->rank; ++d) o += (d ? ", " : "") + std::to_string(ts[i]->shape[d]);
    o += "]";
  }
  return o + "]";
}

}  // namespace

struct GraphInstance::BoundNode {
  const GraphNode* node = nullptr;
  std::shared_ptr<Backend> backend;
  // CPU path
  const OpKernel* kernel = nullptr;
  std::vector<Tensor*> inputs, outputs;
  std::unique_ptr<OpState> state;
  size_t scratch_bytes = 0;
  const Tensor* first_dynamic = nullptr;
  // Plugin path
  std::vector<edgepack_backend_tensor> plugin_tensors;
  std::vector<edgepack_backend_tensor*> plugin_inputs, plugin_outputs;
  edgepack_backend_attrs plugin_attrs{};
  edgepack_backend_node plugin_node{};
  void* plugin_state = nullptr;

  ~BoundNode() {
    if (backend && backend->api() && backend->api()->release_node)
      backend->api()->release_node(backend->api()->context, plugin_state);
  }
};

GraphInstance::GraphInstance(std::unique_ptr<DeviceGraph> graph,
                             std::vector<std::shared_ptr<Backend>> backends, ThreadPool* pool,
                             int threads)
    : graph_(std::move(graph)), backends_(std::move(backends)), pool_(pool), threads_(threads) {
  tensors_.resize(graph_->tensors.size());
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const GraphTensor& g = graph_->tensors[i];
    Tensor& t = tensors_[i];
    t.name = g.name;
    t.dtype = g.dtype;
    t.rank = g.rank;
    for (int d = 0; d < kMaxRank; ++d) t.static_shape[d] = t.shape[d] = g.shape[d];
    t.dynamic_dim0 = g.flags & kTensorDynamicDim0;
    t.constant = g.flags & kTensorConstant;
    t.data = const_cast<void*>(g.constant);  // constants are read-only by contract
  }
  if (backends_.empty()) backends_.push_back(Backend::cpu());
}

GraphInstance::~GraphInstance() = default;

int GraphInstance::input_index(const std::string& name) const {
  for (uint32_t t : graph_->inputs)
    if (tensors_[t].name == name) return static_cast<int>(t);
  return -1;
}

int GraphInstance::output_index(const std::string& name) const {
  for (uint32_t t : graph_->outputs)
    if (tensors_[t].name == name) return static_cast<int>(t);
  return -1;
}

std::vector<std::string> GraphInstance::node_backends() const {
  std::vector<std::string> out;
  for (const auto& bn : nodes_) out.push_back(bn->backend ? bn->backend->name() : "");
  return out;
}

void GraphInstance::bind(BoundNode& bn, size_t index) {
  const GraphNode& node = graph_->nodes[index];
  bn.node = &node;
  for (uint32_t t : node.inputs) bn.inputs.push_back(t == kNoTensor ? nullptr : &tensors_[t]);
  for (uint32_t t : node.outputs) bn.outputs.push_back(&tensors_[t]);
  for (Tensor* t : bn.inputs)
    if (t && t->dynamic_dim0 && !bn.first_dynamic) bn.first_dynamic = t;

  for (const auto& backend : backends_) {
    if (backend->is_cpu()) {
      bn.kernel = find_cpu_op(node.op_type);
      if (!bn.kernel)
        throw Error(ErrorCode::kUnsupported, "op '" + node.op_type + "' (node '" + node.name +
                                                 "') is not supported by the CPU runtime");
      PrepareContext ctx;
      ctx.op_type = node.op_type;
      ctx.node_name = node.name;
      ctx.attrs = &node.attrs;
      ctx.inputs = bn.inputs;
      ctx.outputs = bn.outputs;
      ctx.threads = threads_;
      bn.kernel->prepare(ctx);
      bn.state = std::move(ctx.state);
      bn.scratch_bytes = ctx.scratch_bytes;
      bn.backend = backend;
      return;
    }
    // Plugin: mirror tensors into the C structs (stable addresses from here on).
    const edgepack_backend_api* api = backend->api();
    const size_t ni = bn.inputs.size(), no = bn.outputs.size();
    bn.plugin_tensors.assign(ni + no, edgepack_backend_tensor{});
    bn.plugin_inputs.assign(ni, nullptr);
    bn.plugin_outputs.assign(no, nullptr);
    auto mirror = [](const Tensor& t, edgepack_backend_tensor& p) {
      p.name = t.name.c_str();
      p.dtype = static_cast<int32_t>(t.dtype);
      p.rank = t.rank;
      for (int d = 0; d < kMaxRank; ++d) {
        p.shape[d] = t.shape[d];
        p.static_shape[d] = t.static_shape[d];
      }
      p.data = t.data;
      p.is_constant = t.constant;
      p.dynamic_dim0 = t.dynamic_dim0;
    };
    for (size_t i = 0; i < ni; ++i)
      if (bn.inputs[i]) {
        mirror(*bn.inputs[i], bn.plugin_tensors[i]);
        bn.plugin_inputs[i] = &bn.plugin_tensors[i];
      }
    for (size_t i = 0; i < no; ++i) {
      mirror(*bn.outputs[i], bn.plugin_tensors[ni + i]);
      bn.plugin_outputs[i] = &bn.plugin_tensors[ni + i];
    }
    bn.plugin_attrs = {&node.attrs, attr_int, attr_float, attr_ints, attr_floats, attr_string};
    bn.plugin_node = {node.op_type.c_str(),     node.name.c_str(), ni, bn.plugin_inputs.data(), no,
                      bn.plugin_outputs.data(), &bn.plugin_attrs};
    if (!api->supports_op(api->context, &bn.plugin_node)) continue;
    char err[256] = {0};
    void* st = nullptr;
    if (api->prepare_node(api->context, &bn.plugin_node, &st, err, sizeof err) != 0) {
      log(LogLevel::kWarning, "backend '" + backend->name() + "' could not prepare node '" +
                                  node.name + "' (" + node.op_type + "): " + err +
                                  "; falling back");
      if (api->release_node) api->release_node(api->context, st);
      continue;
    }
    bn.plugin_state = st;
    bn.backend = backend;
    return;
  }
  throw Error(ErrorCode::kUnsupported, "no backend can run node '" + node.name + "'");
}

void GraphInstance::prepare() {
  if (prepared_) return;
  // Arena first (prepare may look at tensor pointers), then scratch after binding.
  const size_t plan = align_up(static_cast<size_t>(graph_->arena_size));
  nodes_.clear();
  // Point non-constant tensors into a provisional arena so plugins see real addresses.
  arena_storage_.assign(plan + kAlign, 0);
  arena_ = arena_storage_.data() +
           (kAlign - reinterpret_cast<uintptr_t>(arena_storage_.data()) % kAlign) % kAlign;
  auto place = [&]() {
    for (size_t i = 0; i < tensors_.size(); ++i)
      if (!tensors_[i].constant) tensors_[i].data = arena_ + graph_->tensors[i].location;
  };
  place();
  for (size_t i = 0; i < graph_->nodes.size(); ++i) {
    nodes_.push_back(std::make_unique<BoundNode>());
    bind(*nodes_.back(), i);
  }
  size_t scratch = 0;
  for (const auto& bn : nodes_) scratch = std::max(scratch, bn->scratch_bytes);
  if (scratch) {
    // Grow the arena by the largest scratch need; re-point tensors (and plugin mirrors).
    std::vector<uint8_t> bigger(plan + align_up(scratch) + kAlign, 0);
    arena_storage_.swap(bigger);
    arena_ = arena_storage_.data() +
             (kAlign - reinterpret_cast<uintptr_t>(arena_storage_.data()) % kAlign) % kAlign;
    place();
  }
  arena_size_ = plan + align_up(scratch);
  prepared_ = true;
}

void GraphInstance::set_profiling(bool on) {
  profiling_ = on;
  profile_runs_ = 0;
  node_ms_.assign(graph_->nodes.size(), {});
}

double GraphInstance::profile_total_ms() const {
  double total = 0.0;
  for (const auto& v : node_ms_) total += median_of(v);
  return total;
}

std::string GraphInstance::profile_json(const std::string& stage) const {
  std::string o;
  if (node_ms_.size() != nodes_.size())
    return o;  // never profiled (a stage that did not
               // run lists its nodes with 0 samples)
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const BoundNode& bn = *nodes_[i];
    const double ms = median_of(node_ms_[i]);
    bool exact = false;
    const double flops = node_flops(*bn.node, bn.inputs, bn.outputs, &exact);
    char nums[256];
    std::snprintf(nums, sizeof nums,
                  "\"samples\": %zu, \"ms\": %.6f, \"flops\": %.0f, \"flops_exact\": %s, "
                  "\"gflops\": %.4f",
                  node_ms_[i].size(), ms, flops, exact ? "true" : "false",
                  ms > 0 ? flops / (ms * 1e6) : 0.0);
    if (!o.empty()) o += ",\n    ";
    o += "{\"stage\": " + json_str(stage) + ", \"name\": " + json_str(bn.node->name) +
         ", \"op\": " + json_str(bn.node->op_type) +
         ", \"backend\": " + json_str(bn.backend ? bn.backend->name() : "") +
         ", \"inputs\": " + json_shapes(bn.inputs) + ", \"outputs\": " + json_shapes(bn.outputs) +
         ", " + nums + "}";
  }
  return o;
}

void GraphInstance::run() {
  if (!prepared_) prepare();
  if (profiling_ && node_ms_.size() != nodes_.size()) node_ms_.assign(nodes_.size(), {});
  if (profiling_) ++profile_runs_;
  using clock = std::chrono::steady_clock;
  uint8_t* scratch = arena_ + align_up(static_cast<size_t>(graph_->arena_size));
  for (size_t idx = 0; idx < nodes_.size(); ++idx) {
    BoundNode& bn = *nodes_[idx];
    const clock::time_point t0 = profiling_ ? clock::now() : clock::time_point();
    struct Stamp {
      bool on;
      clock::time_point t0;
      std::vector<double>* out;
      ~Stamp() {
        if (on)
          out->push_back(std::chrono::duration<double, std::milli>(clock::now() - t0).count());
      }
    } stamp{profiling_, t0, profiling_ ? &node_ms_[idx] : nullptr};
    // Default actual shapes: static, dim 0 scaled like the first dynamic input.
    for (Tensor* t : bn.outputs) {
      for (int d = 0; d < t->rank; ++d) t->shape[d] = t->static_shape[d];
      if (t->dynamic_dim0 && bn.first_dynamic && bn.first_dynamic->static_shape[0] > 0)
        t->shape[0] =
            t->static_shape[0] * bn.first_dynamic->shape[0] / bn.first_dynamic->static_shape[0];
    }
    if (bn.kernel) {
      RunContext ctx;
      ctx.inputs = &bn.inputs;
      ctx.outputs = &bn.outputs;
      ctx.state = bn.state.get();
      ctx.scratch = scratch;
      ctx.scratch_bytes = bn.scratch_bytes;
      ctx.pool = pool_;
      ctx.node_name = bn.node->name.c_str();
      bn.kernel->run(ctx);
      continue;
    }
    const size_t ni = bn.inputs.size();
    for (size_t i = 0; i < bn.plugin_tensors.size(); ++i) {
      const Tensor* t = i < ni ? bn.inputs[i] : bn.outputs[i - ni];
      if (!t) continue;
      edgepack_backend_tensor& p = bn.plugin_tensors[i];
      for (int d = 0; d < kMaxRank; ++d) p.shape[d] = t->shape[d];
      p.data = t->data;
    }
    const edgepack_backend_api* api = bn.backend->api();
    char err[256] = {0};
    if (api->run_node(api->context, &bn.plugin_node, bn.plugin_state, err, sizeof err) != 0)
      throw Error(ErrorCode::kRuntimeError, "backend '" + bn.backend->name() +
                                                "' failed on node '" + bn.node->name + "': " + err);
    for (size_t i = 0; i < bn.outputs.size(); ++i) {
      const int64_t rows = bn.plugin_tensors[ni + i].shape[0];
      Tensor* t = bn.outputs[i];
      if (t->rank > 0 && rows >= 0 && rows <= t->static_shape[0]) t->shape[0] = rows;
    }
  }
}

}  // namespace edgepack

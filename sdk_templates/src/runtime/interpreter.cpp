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
  int partition = -1;  // index into partitions_, or -1 (CPU)
  // CPU path
  const OpKernel* kernel = nullptr;
  std::vector<Tensor*> inputs, outputs;
  std::unique_ptr<OpState> state;
  size_t scratch_bytes = 0;
  const Tensor* first_dynamic = nullptr;
  // Plugin view of the node: pointers into GraphInstance::mirrors_
  std::vector<edgepack_backend_tensor*> plugin_inputs, plugin_outputs;
  edgepack_backend_attrs plugin_attrs{};
  edgepack_backend_node plugin_node{};
};

struct GraphInstance::Partition {
  std::shared_ptr<Backend> backend;
  size_t first = 0, last = 0;  // node indices, inclusive
  std::vector<const edgepack_backend_node*> nodes;
  std::vector<edgepack_backend_tensor*> inputs, outputs;
  std::vector<uint32_t> input_tensors, output_tensors;  // graph tensor indices of the above
  edgepack_backend_partition c{};
  void* state = nullptr;

  ~Partition() {
    const edgepack_backend_api* api = backend ? backend->api() : nullptr;
    if (api && api->release_partition) api->release_partition(api->context, state);
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

void* GraphInstance::point_input(uint32_t index, const void* data) {
  if (!prepared_) prepare();
  if (index >= tensors_.size() || !(graph_->tensors[index].flags & kTensorInput))
    throw Error(ErrorCode::kInvalidArgument,
                "point_input: tensor " + std::to_string(index) + " is not a graph input");
  Tensor& t = tensors_[index];
  t.data = data ? const_cast<void*>(data) : arena_ + graph_->tensors[index].location;
  return t.data;
}

std::vector<std::string> GraphInstance::node_backends() const {
  std::vector<std::string> out;
  for (const auto& bn : nodes_) out.push_back(bn->backend ? bn->backend->name() : "");
  return out;
}

std::vector<int> GraphInstance::node_partitions() const {
  std::vector<int> out;
  for (const auto& bn : nodes_) out.push_back(bn->partition);
  return out;
}

void GraphInstance::bind_cpu(BoundNode& bn) {
  const GraphNode& node = *bn.node;
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
  bn.backend = Backend::cpu();
}

void GraphInstance::mirror_node(BoundNode& bn) {
  const GraphNode& node = *bn.node;
  for (uint32_t t : node.inputs)
    bn.plugin_inputs.push_back(t == kNoTensor ? nullptr : &mirrors_[t]);
  for (uint32_t t : node.outputs) bn.plugin_outputs.push_back(&mirrors_[t]);
  bn.plugin_attrs = {&node.attrs, attr_int, attr_float, attr_ints, attr_floats, attr_string};
  bn.plugin_node = {node.op_type.c_str(),    node.name.c_str(),        bn.plugin_inputs.size(),
                    bn.plugin_inputs.data(), bn.plugin_outputs.size(), bn.plugin_outputs.data(),
                    &bn.plugin_attrs};
}

// Nodes first..last (inclusive) as one partition of `backend`: boundary tensors, then
// prepare_partition. False (logged) when the plugin refuses it.
bool GraphInstance::try_partition(size_t first, size_t last,
                                  const std::shared_ptr<Backend>& backend) {
  auto part = std::make_unique<Partition>();
  part->backend = backend;
  part->first = first;
  part->last = last;
  std::vector<int> producer(tensors_.size(), -1);
  for (size_t i = 0; i < graph_->nodes.size(); ++i)
    for (uint32_t t : graph_->nodes[i].outputs) producer[t] = static_cast<int>(i);
  auto inside = [&](int node) {
    return node >= static_cast<int>(first) && node <= static_cast<int>(last);
  };
  std::vector<bool> seen(tensors_.size(), false);
  for (size_t i = first; i <= last; ++i) {
    part->nodes.push_back(&nodes_[i]->plugin_node);
    for (uint32_t t : graph_->nodes[i].inputs) {
      if (t == kNoTensor || seen[t] || tensors_[t].constant || inside(producer[t])) continue;
      seen[t] = true;
      part->input_tensors.push_back(t);
    }
  }
  std::vector<bool> read_outside(tensors_.size(), false);
  for (size_t i = 0; i < graph_->nodes.size(); ++i)
    if (!inside(static_cast<int>(i)))
      for (uint32_t t : graph_->nodes[i].inputs)
        if (t != kNoTensor) read_outside[t] = true;
  for (uint32_t t : graph_->outputs) read_outside[t] = true;
  for (size_t i = first; i <= last; ++i)
    for (uint32_t t : graph_->nodes[i].outputs)
      if (read_outside[t]) part->output_tensors.push_back(t);
  for (uint32_t t : part->input_tensors) part->inputs.push_back(&mirrors_[t]);
  for (uint32_t t : part->output_tensors) part->outputs.push_back(&mirrors_[t]);
  part->c.struct_size = sizeof(edgepack_backend_partition);
  part->c.index = static_cast<uint32_t>(partitions_.size());
  part->c.num_nodes = part->nodes.size();
  part->c.nodes = part->nodes.data();
  part->c.num_inputs = part->inputs.size();
  part->c.inputs = part->inputs.data();
  part->c.num_outputs = part->outputs.size();
  part->c.outputs = part->outputs.data();

  const edgepack_backend_api* api = backend->api();
  char err[256] = {0};
  void* st = nullptr;
  if (api->prepare_partition(api->context, &part->c, &st, err, sizeof err) != 0) {
    err[sizeof err - 1] = 0;
    log(LogLevel::kWarning,
        "backend '" + backend->name() + "' could not prepare the partition of " +
            std::to_string(last - first + 1) + " nodes from '" + graph_->nodes[first].name + "' (" +
            graph_->nodes[first].op_type + "): " + err + "; its nodes go to the next backend");
    part->state = st;  // released by ~Partition
    return false;
  }
  part->state = st;
  for (size_t i = first; i <= last; ++i) {
    nodes_[i]->backend = backend;
    nodes_[i]->partition = static_cast<int>(partitions_.size());
  }
  partitions_.push_back(std::move(part));
  return true;
}

void GraphInstance::prepare() {
  if (prepared_) return;
  // Arena first (prepare may look at tensor pointers), then scratch after binding.
  const size_t plan = align_up(static_cast<size_t>(graph_->arena_size));
  nodes_.clear();
  partitions_.clear();
  steps_.clear();
  // Point non-constant tensors into a provisional arena so plugins see real addresses.
  arena_storage_.assign(plan + kAlign, 0);
  arena_ = arena_storage_.data() +
           (kAlign - reinterpret_cast<uintptr_t>(arena_storage_.data()) % kAlign) % kAlign;
  auto place = [&]() {
    for (size_t i = 0; i < tensors_.size(); ++i)
      if (!tensors_[i].constant) tensors_[i].data = arena_ + graph_->tensors[i].location;
  };
  auto sync_mirrors = [&]() {
    for (size_t i = 0; i < tensors_.size(); ++i) {
      const Tensor& t = tensors_[i];
      edgepack_backend_tensor& p = mirrors_[i];
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
    }
  };
  place();
  mirrors_.assign(tensors_.size(), edgepack_backend_tensor{});  // addresses fixed from here on
  sync_mirrors();
  const size_t n = graph_->nodes.size();
  for (size_t i = 0; i < n; ++i) {
    auto bn = std::make_unique<BoundNode>();
    bn->node = &graph_->nodes[i];
    for (uint32_t t : bn->node->inputs)
      bn->inputs.push_back(t == kNoTensor ? nullptr : &tensors_[t]);
    for (uint32_t t : bn->node->outputs) bn->outputs.push_back(&tensors_[t]);
    for (Tensor* t : bn->inputs)
      if (t && t->dynamic_dim0 && !bn->first_dynamic) bn->first_dynamic = t;
    mirror_node(*bn);
    nodes_.push_back(std::move(bn));
  }
  // Claim: the first backend (from position `from[i]` of the preference) that is the CPU or
  // whose supports_op says yes. A partition that fails to prepare moves its nodes' `from` past
  // that backend and is claimed again.
  std::vector<size_t> from(n, 0);
  auto claim = [&](size_t i) {
    for (size_t b = from[i]; b < backends_.size(); ++b) {
      const auto& backend = backends_[b];
      if (backend->is_cpu()) return b;
      const edgepack_backend_api* api = backend->api();
      if (api->supports_op(api->context, &nodes_[i]->plugin_node)) return b;
    }
    return backends_.size();  // CPU (always available)
  };
  size_t i = 0;
  while (i < n) {
    const size_t b = claim(i);
    if (b >= backends_.size() || backends_[b]->is_cpu()) {
      bind_cpu(*nodes_[i]);
      steps_.push_back(static_cast<int>(i));
      ++i;
      continue;
    }
    size_t last = i;
    while (last + 1 < n && claim(last + 1) == b) ++last;
    if (!try_partition(i, last, backends_[b])) {
      for (size_t k = i; k <= last; ++k) from[k] = b + 1;
      continue;
    }
    steps_.push_back(-static_cast<int>(partitions_.size()));
    i = last + 1;
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
    sync_mirrors();
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
         (bn.partition >= 0 ? ", \"partition\": " + std::to_string(bn.partition) : "") +
         ", \"inputs\": " + json_shapes(bn.inputs) + ", \"outputs\": " + json_shapes(bn.outputs) +
         ", " + nums + "}";
  }
  return o;
}

namespace {
// Default actual shapes of a node's outputs: static, dim 0 scaled like the first dynamic input.
void default_output_shapes(const std::vector<Tensor*>& outputs, const Tensor* first_dynamic) {
  for (Tensor* t : outputs) {
    for (int d = 0; d < t->rank; ++d) t->shape[d] = t->static_shape[d];
    if (t->dynamic_dim0 && first_dynamic && first_dynamic->static_shape[0] > 0)
      t->shape[0] = t->static_shape[0] * first_dynamic->shape[0] / first_dynamic->static_shape[0];
  }
}
}  // namespace

void GraphInstance::run_partition(Partition& part) {
  // Refresh what the plugin reads: data and actual shapes of the inputs (a graph input may read
  // memory outside the arena, point_input), default shapes of everything the partition produces
  // (their data pointers were fixed at the end of prepare()).
  for (uint32_t t : part.input_tensors) {
    mirrors_[t].data = tensors_[t].data;
    for (int d = 0; d < kMaxRank; ++d) mirrors_[t].shape[d] = tensors_[t].shape[d];
  }
  for (size_t i = part.first; i <= part.last; ++i) {
    BoundNode& bn = *nodes_[i];
    default_output_shapes(bn.outputs, bn.first_dynamic);
    for (uint32_t t : bn.node->outputs)
      for (int d = 0; d < kMaxRank; ++d) mirrors_[t].shape[d] = tensors_[t].shape[d];
  }
  const edgepack_backend_api* api = part.backend->api();
  char err[256] = {0};
  if (api->run_partition(api->context, &part.c, part.state, err, sizeof err) != 0) {
    err[sizeof err - 1] = 0;
    throw Error(ErrorCode::kRuntimeError, "backend '" + part.backend->name() +
                                              "' failed on the partition from node '" +
                                              graph_->nodes[part.first].name + "': " + err);
  }
  for (uint32_t t : part.output_tensors) {
    const int64_t rows = mirrors_[t].shape[0];
    Tensor& x = tensors_[t];
    if (x.rank > 0 && rows >= 0 && rows <= x.static_shape[0]) x.shape[0] = rows;
  }
}

std::string GraphInstance::profile_backends_json(const std::string& stage) const {
  std::string o;
  if (node_ms_.size() != nodes_.size()) return o;
  std::vector<const Backend*> order;
  for (const auto& b : backends_) order.push_back(b.get());
  if (std::find(order.begin(), order.end(), Backend::cpu().get()) == order.end())
    order.push_back(Backend::cpu().get());
  for (const Backend* b : order) {
    size_t count = 0;
    double ms = 0.0;
    std::vector<int> parts;
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (nodes_[i]->backend.get() != b) continue;
      ++count;
      ms += median_of(node_ms_[i]);
      if (nodes_[i]->partition >= 0 &&
          std::find(parts.begin(), parts.end(), nodes_[i]->partition) == parts.end())
        parts.push_back(nodes_[i]->partition);
    }
    char nums[128];
    std::snprintf(nums, sizeof nums, "\"nodes\": %zu, \"partitions\": %zu, \"ms\": %.6f", count,
                  parts.size(), ms);
    if (!o.empty()) o += ",\n    ";
    o += "{\"stage\": " + json_str(stage) + ", \"name\": " + json_str(b->name()) +
         ", \"device\": " + json_str(b->description()) + ", " + nums + "}";
  }
  return o;
}

void GraphInstance::run() {
  if (!prepared_) prepare();
  if (profiling_ && node_ms_.size() != nodes_.size()) node_ms_.assign(nodes_.size(), {});
  if (profiling_) ++profile_runs_;
  using clock = std::chrono::steady_clock;
  uint8_t* scratch = arena_ + align_up(static_cast<size_t>(graph_->arena_size));
  for (int step : steps_) {
    // A partition's time is recorded on its first node (its other nodes get 0 ms samples).
    const size_t idx = step >= 0 ? static_cast<size_t>(step) : partitions_[-step - 1]->first;
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
    if (step < 0) {
      Partition& part = *partitions_[-step - 1];
      if (profiling_)
        for (size_t k = part.first + 1; k <= part.last; ++k) node_ms_[k].push_back(0.0);
      run_partition(part);
      continue;
    }
    BoundNode& bn = *nodes_[idx];
    default_output_shapes(bn.outputs, bn.first_dynamic);
    RunContext ctx;
    ctx.inputs = &bn.inputs;
    ctx.outputs = &bn.outputs;
    ctx.state = bn.state.get();
    ctx.scratch = scratch;
    ctx.scratch_bytes = bn.scratch_bytes;
    ctx.pool = pool_;
    ctx.node_name = bn.node->name.c_str();
    bn.kernel->run(ctx);
  }
}

}  // namespace edgepack

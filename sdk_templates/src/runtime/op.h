// SPDX-License-Identifier: Apache-2.0
// The CPU op interface: what one op implementation sees of the graph and the runtime.
//
// An op is a pair of plain functions registered explicitly, ONE line per op, in
// ops/op_list.h (no static self-registration: a static library would silently drop it):
//   prepare(PrepareContext&)  once per node, after load. Validates dtypes, ranks, shapes and
//                             attributes (fail() with a clear message), may read constant inputs
//                             (e.g. pack weights), parses attributes into an OpState it owns and
//                             states how many bytes of scratch memory run() needs. May allocate.
//   run(RunContext&)          every inference. Must not allocate: scratch memory comes from the
//                             arena (RunContext::scratch, 64-byte aligned), tensors are preplanned.
// Shapes: every Tensor carries its static shape (from the graph) and its actual shape. Only
// dimension 0 can differ (dynamic_dim0 tensors downstream of NonMaxSuppression/TopK); kernels
// read `shape`. Before run() the interpreter sets each output's actual shape to its static shape,
// with dim 0 scaled like the first dynamic input's dim 0 (row-preserving ops need nothing more);
// ops with data-dependent output sizes set outputs[i]->shape[0] themselves.
// See docs/adding-an-op.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "runtime/runtime.h"

namespace edgepack {

class ThreadPool;  // runtime/kernels/threadpool.h
class GraphNodeAttrs;

constexpr int kMaxRank = 8;

// A tensor as ops see it. Memory is owned by the graph instance (arena) or the graph bytes
// (constants); ops never free it.
struct Tensor {
  std::string name;
  DType dtype = DType::kFloat32;
  int rank = 0;
  int64_t static_shape[kMaxRank] = {};
  int64_t shape[kMaxRank] = {};  // actual shape; equals static_shape except maybe dim 0
  bool dynamic_dim0 = false;
  bool constant = false;  // data is valid at prepare time (read-only)
  void* data = nullptr;

  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < rank; ++i) n *= shape[i];
    return n;
  }
  int64_t static_numel() const {
    int64_t n = 1;
    for (int i = 0; i < rank; ++i) n *= static_shape[i];
    return n;
  }
  size_t bytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
  std::vector<int64_t> static_dims() const { return {static_shape, static_shape + rank}; }
  std::vector<int64_t> dims() const { return {shape, shape + rank}; }
  template <class T>
  T* as() const {
    return static_cast<T*>(data);
  }
};

// Typed attributes of one node (read-only views into the graph; the getters that return
// vectors allocate, so call them in prepare()).
class Attrs {
 public:
  virtual ~Attrs() = default;
  virtual bool has(const std::string& name) const = 0;
  virtual int64_t get_int(const std::string& name, int64_t fallback) const = 0;
  virtual float get_float(const std::string& name, float fallback) const = 0;
  virtual std::vector<int64_t> get_ints(const std::string& name,
                                        std::vector<int64_t> fallback = {}) const = 0;
  virtual std::vector<float> get_floats(const std::string& name,
                                        std::vector<float> fallback = {}) const = 0;
  virtual std::string get_string(const std::string& name, std::string fallback = "") const = 0;
};

// Private per-node state built by prepare() (parsed attributes, packed weights, ...).
struct OpState {
  virtual ~OpState() = default;
};

struct PrepareContext {
  std::string op_type;
  std::string node_name;
  const Attrs* attrs = nullptr;
  std::vector<Tensor*> inputs;  // nullptr for an omitted optional input
  std::vector<Tensor*> outputs;
  int threads = 1;
  // Filled by prepare():
  size_t scratch_bytes = 0;
  std::unique_ptr<OpState> state;

  // nullptr when the input is omitted or beyond the node's input count.
  Tensor* input(size_t i) const { return i < inputs.size() ? inputs[i] : nullptr; }
  // Throws Error(kInvalidArgument) naming the op and node.
  [[noreturn]] void fail(const std::string& message) const {
    throw Error(ErrorCode::kInvalidArgument,
                "op '" + op_type + "' (node '" + node_name + "'): " + message);
  }
};

struct RunContext {
  const std::vector<Tensor*>* inputs = nullptr;
  const std::vector<Tensor*>* outputs = nullptr;
  OpState* state = nullptr;
  void* scratch = nullptr;  // scratch_bytes from prepare, 64-byte aligned, arena-owned
  size_t scratch_bytes = 0;
  ThreadPool* pool = nullptr;  // nullptr: run single-threaded
  const char* node_name = "";

  Tensor* input(size_t i) const { return i < inputs->size() ? (*inputs)[i] : nullptr; }
  Tensor* output(size_t i) const { return (*outputs)[i]; }
  template <class S>
  S* state_as() const {
    return static_cast<S*>(state);
  }
};

using PrepareFn = void (*)(PrepareContext& ctx);
using RunFn = void (*)(RunContext& ctx);

struct OpKernel {
  const char* op_type;  // ONNX op type, e.g. "Conv"
  PrepareFn prepare;
  RunFn run;
};

// The built-in CPU op table (ops/registry.cpp).
const std::vector<OpKernel>& cpu_ops();
const OpKernel* find_cpu_op(const std::string& op_type);  // nullptr when unknown

}  // namespace edgepack

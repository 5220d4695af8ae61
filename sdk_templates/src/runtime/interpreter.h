// SPDX-License-Identifier: Apache-2.0
// One loaded device graph, ready to run: tensors over one arena (offline plan + op scratch),
// every node bound to a backend and prepared: CPU nodes one by one, plugin nodes in partitions
// (maximal runs of consecutive nodes one plugin claims, ABI 2 of edgepack_backend.h).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "edgepack_backend.h"
#include "runtime/backend.h"
#include "runtime/graph.h"
#include "runtime/op.h"

namespace edgepack {

class GraphInstance {
 public:
  // `graph` bytes must outlive the instance (constants point into them). `pool` may be null.
  GraphInstance(std::unique_ptr<DeviceGraph> graph, std::vector<std::shared_ptr<Backend>> backends,
                ThreadPool* pool, int threads);
  ~GraphInstance();
  GraphInstance(const GraphInstance&) = delete;
  GraphInstance& operator=(const GraphInstance&) = delete;

  // Allocates the arena, binds and prepares every node. Idempotent.
  void prepare();
  void run();

  const DeviceGraph& graph() const { return *graph_; }
  Tensor& tensor(uint32_t index) { return tensors_[index]; }
  const Tensor& tensor(uint32_t index) const { return tensors_[index]; }
  // Index of a graph input/output by name, or -1.
  int input_index(const std::string& name) const;
  int output_index(const std::string& name) const;
  // Points graph input `index` at `data` instead of its arena slot, for the runs until the next
  // call (nullptr points it back at the slot); returns where the input now reads. No run writes
  // a graph input (the loader refuses a node that produces one; ops and plugins read their
  // inputs), so `data` is only read: ownership stays with the caller, who keeps it valid and
  // unchanged while a run reads it, at least the input's static byte size and aligned for its
  // dtype. Plugin partitions see the pointer too (tensor `data` is refreshed before each
  // run_partition). Allocates nothing; prepares the graph first if needed.
  void* point_input(uint32_t index, const void* data);
  size_t arena_bytes() const { return arena_size_; }
  // Backend name per node (after prepare), for logs and tests.
  std::vector<std::string> node_backends() const;
  // Partition index per node (after prepare); -1 for nodes the built-in CPU backend runs.
  std::vector<int> node_partitions() const;

  // Per-node profiling: when on, every run() times each node (steady clock) and keeps the
  // samples. Turning it on (again) clears the samples. Off by default: no timing cost.
  void set_profiling(bool on);
  bool profiling() const { return profiling_; }
  // One JSON object per node, comma-separated (no brackets), in graph order: stage, name, op,
  // backend, input/output shapes (actual, of the last run), samples, ms (median over the
  // samples), flops (of one execution), flops_exact (false: an estimate, about one operation
  // per element), gflops (flops / median time). Empty when profiling was never turned on.
  std::string profile_json(const std::string& stage) const;
  // Sum over the nodes of their median ms.
  double profile_total_ms() const;
  // Per backend, in preference order: {"stage": .., "name": .., "device": .., "nodes": N,
  // "partitions": P, "ms": sum of medians}, comma-separated (no brackets). Empty when never
  // profiled.
  std::string profile_backends_json(const std::string& stage) const;

 private:
  struct BoundNode;
  struct Partition;
  void bind_cpu(BoundNode& bn);
  void mirror_node(BoundNode& bn);
  bool try_partition(size_t first, size_t last, const std::shared_ptr<Backend>& backend);
  void run_partition(Partition& part);

  std::unique_ptr<DeviceGraph> graph_;
  std::vector<std::shared_ptr<Backend>> backends_;
  ThreadPool* pool_;
  int threads_;
  std::vector<Tensor> tensors_;
  std::vector<std::unique_ptr<BoundNode>> nodes_;
  std::vector<std::unique_ptr<Partition>> partitions_;
  std::vector<edgepack_backend_tensor> mirrors_;  // one per graph tensor, for plugins
  std::vector<int> steps_;  // run order: node index >= 0, or -(partition index) - 1
  std::vector<uint8_t> arena_storage_;
  uint8_t* arena_ = nullptr;
  size_t arena_size_ = 0;
  bool prepared_ = false;
  bool profiling_ = false;
  int profile_runs_ = 0;                      // runs since profiling was turned on
  std::vector<std::vector<double>> node_ms_;  // per node: one sample per execution
};

}  // namespace edgepack

// SPDX-License-Identifier: Apache-2.0
// The device graph loader (format: docs/device-graph-format.md). load_graph() verifies every
// offset, size and index of untrusted bytes and returns views into them: constants and attribute
// arrays are not copied (unless the bytes are misaligned in memory, see graph.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/op.h"

namespace edgepack {

enum TensorFlags : uint16_t {
  kTensorInput = 1,
  kTensorOutput = 2,
  kTensorConstant = 4,
  kTensorDynamicDim0 = 8,
};

enum class AttrType : uint8_t { kInt = 1, kFloat = 2, kInts = 3, kFloats = 4, kString = 5 };

struct GraphAttr {
  std::string name;
  AttrType type;
  uint32_t count;
  int64_t i = 0;
  float f = 0.0f;
  const int64_t* ints = nullptr;  // into the data section (8-aligned)
  const float* floats = nullptr;  // into the data section
  std::string s;
};

struct GraphTensor {
  std::string name;
  DType dtype;
  int rank;
  int64_t shape[kMaxRank];
  uint16_t flags;
  uint64_t location;  // arena offset, or data-section offset for constants
  uint64_t bytes;
  const void* constant = nullptr;  // fixed-up pointer for constants
};

class NodeAttrs : public Attrs {
 public:
  std::vector<GraphAttr> list;
  const GraphAttr* find(const std::string& name) const;
  bool has(const std::string& name) const override { return find(name) != nullptr; }
  int64_t get_int(const std::string& name, int64_t fallback) const override;
  float get_float(const std::string& name, float fallback) const override;
  std::vector<int64_t> get_ints(const std::string& name,
                                std::vector<int64_t> fallback = {}) const override;
  std::vector<float> get_floats(const std::string& name,
                                std::vector<float> fallback = {}) const override;
  std::string get_string(const std::string& name, std::string fallback = "") const override;
};

constexpr uint32_t kNoTensor = 0xFFFFFFFFu;

struct GraphNode {
  std::string op_type;
  std::string name;
  std::vector<uint32_t> inputs;  // kNoTensor = omitted optional input
  std::vector<uint32_t> outputs;
  NodeAttrs attrs;
};

struct DeviceGraph {
  uint16_t version_major = 0, version_minor = 0;
  uint64_t arena_size = 0;
  std::vector<GraphTensor> tensors;
  std::vector<GraphNode> nodes;
  std::vector<uint32_t> inputs, outputs;
  std::vector<uint8_t> aligned_copy;  // only when the data section was misaligned in memory
};

// Verifies and loads; `bytes` must outlive the result. Throws Error(kArtifactInvalid) with a
// message saying what is wrong ("device graph: tensor 3 extends past the data section").
std::unique_ptr<DeviceGraph> load_graph(const uint8_t* bytes, size_t size);

}  // namespace edgepack

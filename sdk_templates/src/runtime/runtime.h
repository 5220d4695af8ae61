// SPDX-License-Identifier: Apache-2.0
// The runtime's interface to the rest of the SDK (the C ABI, the runner, tests).
//
// A Pipeline is built from an already authenticated and decrypted artifact: the manifest JSON
// and a way to fetch section bytes by name. It owns its tensors (arena from the offline memory
// plan) and never allocates on the run path after prepare() (bindings, stacked map outputs and
// timing records are made there; sdk_templates/tests/alloc_test.cpp counts it), except while
// profiling, which keeps a sample per node and run. Errors are edgepack::Error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"

namespace edgepack {

// kBool (1 byte) only appears inside graphs (Equal/Greater/Less feeding Where), never in the
// manifest.
enum class DType : int {
  kFloat32 = 1,
  kUInt8 = 2,
  kInt32 = 3,
  kInt64 = 4,
  kBool = 5,
  kInt8 = 6,
  kInt16 = 7,
  kFloat16 = 8,
  kUInt16 = 9,
  kUInt32 = 10,
  kUInt64 = 11,
  kFloat64 = 12
};
constexpr int kMaxDType = 12;  // the highest DType code (the device graph loader checks against it)
const char* dtype_name(DType t);
size_t dtype_size(DType t);

struct TensorInfo {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;  // static shape; for dynamic_dim0 tensors dim 0 is the bound
  bool dynamic_dim0 = false;
  // [height, width] bounds of an HWC image input whose size the app chooses per run (manifest
  // size_min / size_max; `shape` holds the nominal size): empty when the size is fixed.
  std::vector<int64_t> size_min, size_max;
};

// A view of tensor data owned by the pipeline; valid until the next run or destruction.
struct TensorView {
  TensorInfo info;
  std::vector<int64_t> shape;  // actual shape after the last run (dim 0 <= bound when dynamic)
  void* data = nullptr;
  size_t bytes = 0;  // actual byte size
};

// Gives the runtime the decrypted bytes of a section. The returned memory stays owned by the
// source and must outlive the Pipeline (the runtime may point into it: zero-copy constants).
class SectionSource {
 public:
  virtual ~SectionSource() = default;
  virtual const uint8_t* section(const std::string& name,
                                 size_t* size) const = 0;  // throws NotFound
};

struct RuntimeOptions {
  int threads = 1;        // worker threads for kernels (>= 1)
  std::vector<int> cpus;  // kernel workers pinned to these CPUs (ThreadPool); empty: not pinned
  std::vector<std::string> backend_preference;  // e.g. {"xnnpack", "cpu"}; empty = built-in CPU
};

struct StageTiming {
  std::string stage;
  double ms = 0.0;  // wall time of the last run of this step (all rows for a "map" step)
  int runs = 0;     // executions in the last run (rows for a "map" step)
};

class Pipeline {
 public:
  virtual ~Pipeline() = default;

  // Parses the manifest, loads each stage's device graph (verify + pointer fix-up) and plans
  // memory. `sections` must outlive the pipeline.
  static std::unique_ptr<Pipeline> load(const std::string& manifest_json,
                                        const SectionSource& sections,
                                        const RuntimeOptions& options);

  // Allocates arenas, binds kernels, runs per-op shape/type validation. Idempotent.
  virtual void prepare() = 0;

  // Names as in the manifest: stage names (`classifier.pre`, `classifier`, ...) and model names.
  virtual std::vector<std::string> stage_names() const = 0;

  // Inputs/outputs of the whole pipeline (stage == "") or of one stage.
  virtual std::vector<TensorInfo> inputs(const std::string& stage = "") const = 0;
  virtual std::vector<TensorInfo> outputs(const std::string& stage = "") const = 0;

  // Copies data in; checks dtype and byte size (and dim 0 for dynamic inputs; height and width
  // within size_min..size_max for a bounded image input).
  virtual void set_input(const std::string& stage, const std::string& name, DType dtype,
                         const std::vector<int64_t>& shape, const void* data, size_t bytes) = 0;
  // As set_input, without the copy: the next run reads `data` where it lies (a stage input only
  // when whole and aligned for its dtype, else copied now). The binding ends when that run
  // returns or throws; the input then holds nothing it was set to.
  virtual void bind_input(const std::string& stage, const std::string& name, DType dtype,
                          const std::vector<int64_t>& shape, const void* data, size_t bytes) = 0;
  virtual TensorView output(const std::string& stage, const std::string& name) const = 0;

  // Runs the whole pipeline (stage == "") or one stage by name (a model name is the model's own
  // stage). Times every step. Allocates nothing (profiling off).
  virtual void run(const std::string& stage = "") = 0;
  // One entry per step of the last pipeline run, or one for the stage of the last stage run;
  // valid until the next run.
  virtual const std::vector<StageTiming>& timings() const = 0;

  // Per-node profiling of every stage graph (see GraphInstance::set_profiling): on clears the
  // samples; profile_json() is a JSON object {"schema": "edgepack.profile/1", "runs",
  // "total_ms" (sum of the node medians), "nodes": [...]}.
  virtual void set_profiling(bool on) = 0;
  virtual std::string profile_json() const = 0;
};

}  // namespace edgepack

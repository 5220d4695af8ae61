// SPDX-License-Identifier: Apache-2.0
// alloc_test ARTIFACT DEVICE_KEY PUBLISHER_PUB INPUTS_DIR [--threads T] [--runs N]
// Counts heap allocations during Pipeline::run (runtime.h: run never allocates after prepare).
// Opens the artifact, sets the pipeline inputs from INPUTS_DIR/<name>.npy, then runs the whole
// pipeline and each stage on its own, N times each, and prints one line per case:
//   <case> first=<allocations in the first run> later=<in runs 2..N> runs=<last step's runs>
// (case "pipeline" or "stage:<name>"; runs is the rows of the last step when it is a map step).
// Allocations are counted by replacing the global operator new (every thread's, the kernel
// workers' included); the runtime and kernels never call malloc directly. Driven by
// tests/sdk/test_run_allocations.py.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "artifact/artifact.h"
#include "artifact/keys.h"
#include "common/npy.h"
#include "runtime/runtime.h"

namespace {
std::atomic<long> g_allocations{0};

void* counted(std::size_t size, std::size_t align) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (size == 0) size = 1;
  void* p = nullptr;
  if (align <= alignof(std::max_align_t)) {
    p = std::malloc(size);
  } else if (posix_memalign(&p, align, size) != 0) {
    p = nullptr;
  }
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
}  // namespace

// The replaceable global allocation functions (the array and nothrow forms call these).
void* operator new(std::size_t size) {
  return counted(size, 0);
}
void* operator new[](std::size_t size) {
  return counted(size, 0);
}
void* operator new(std::size_t size, std::align_val_t align) {
  return counted(size, static_cast<std::size_t>(align));
}
void* operator new[](std::size_t size, std::align_val_t align) {
  return counted(size, static_cast<std::size_t>(align));
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}

namespace {
struct Count {
  long first = 0, later = 0;
  int runs = 0;
};

// Runs `stage` ("" = the pipeline) `n` times; allocations of the first run and of the others.
Count count_runs(edgepack::Pipeline& p, const std::string& stage, int n) {
  Count c;
  for (int i = 0; i < n; ++i) {
    const long before = g_allocations.load();
    p.run(stage);
    (i == 0 ? c.first : c.later) += g_allocations.load() - before;
  }
  const auto& t = p.timings();
  c.runs = t.empty() ? 0 : t.back().runs;
  return c;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr,
                 "usage: alloc_test ARTIFACT DEVICE_KEY PUBLISHER_PUB INPUTS_DIR [--threads T] "
                 "[--runs N]\n");
    return 2;
  }
  try {
    edgepack::RuntimeOptions options;
    int runs = 5;
    for (int i = 5; i + 1 < argc; i += 2) {
      const std::string flag = argv[i];
      if (flag == "--threads") options.threads = std::atoi(argv[i + 1]);
      if (flag == "--runs") runs = std::atoi(argv[i + 1]);
    }
    const auto artifact =
        edgepack::Artifact::open_file(argv[1], edgepack::DeviceKey::from_pem_file(argv[2]),
                                      edgepack::PublisherKey::from_pem_file(argv[3]));
    auto p = edgepack::Pipeline::load(artifact->manifest_json(), *artifact, options);
    p->prepare();
    for (const auto& in : p->inputs()) {
      const auto a = edgepack::npy::load(std::string(argv[4]) + "/" + in.name + ".npy");
      p->set_input("", in.name, in.dtype, a.shape, a.data.data(), a.data.size());
    }
    std::vector<std::string> cases{""};
    for (const auto& s : p->stage_names()) cases.push_back(s);
    for (const auto& stage : cases) {
      const Count c = count_runs(*p, stage, runs);
      std::printf("%s first=%ld later=%ld runs=%d\n",
                  stage.empty() ? "pipeline" : ("stage:" + stage).c_str(), c.first, c.later,
                  c.runs);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "alloc_test: error: %s\n", e.what());
    return 1;
  }
  return 0;
}

// SPDX-License-Identifier: Apache-2.0
// pipeline_test MANIFEST SECTIONS_DIR INPUTS_DIR OUTPUTS_DIR [--backend SPEC]...
// Loads a manifest with sections read from files (section name with '/' replaced by '_'),
// sets the pipeline inputs from <name>.npy, runs the whole pipeline and writes every pipeline
// output as <name>.npy plus timings.txt (one "stage runs" line per step) and backends.txt.
// Driven by tests/sdk/test_pipeline.py, which checks the numbers against numpy/onnxruntime.
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "common/atomic_file.h"
#include "common/npy.h"
#include "runtime/runtime.h"

namespace {
std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw edgepack::Error(edgepack::ErrorCode::kIoError, path + ": cannot open");
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

class DirSource : public edgepack::SectionSource {
 public:
  explicit DirSource(std::string dir) : dir_(std::move(dir)) {}
  const uint8_t* section(const std::string& name, size_t* size) const override {
    auto it = cache_.find(name);
    if (it == cache_.end()) {
      std::string file = name;
      for (char& c : file)
        if (c == '/') c = '_';
      it = cache_.emplace(name, read_file(dir_ + "/" + file)).first;
    }
    *size = it->second.size();
    return it->second.data();
  }

 private:
  std::string dir_;
  mutable std::map<std::string, std::vector<uint8_t>> cache_;
};
}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: pipeline_test MANIFEST SECTIONS_DIR INPUTS_DIR OUTPUTS_DIR\n");
    return 2;
  }
  try {
    const std::vector<uint8_t> manifest = read_file(argv[1]);
    DirSource sections(argv[2]);
    edgepack::RuntimeOptions options;
    options.threads = 2;
    for (int i = 5; i + 1 < argc; i += 2)
      if (std::string(argv[i]) == "--backend") options.backend_preference.push_back(argv[i + 1]);
    auto p =
        edgepack::Pipeline::load(std::string(manifest.begin(), manifest.end()), sections, options);
    p->prepare();
    for (const auto& in : p->inputs()) {
      const auto a = edgepack::npy::load(std::string(argv[3]) + "/" + in.name + ".npy");
      p->set_input("", in.name, in.dtype, a.shape, a.data.data(), a.data.size());
    }
    p->run();
    p->run();  // twice: state must not leak between runs
    for (const auto& out : p->outputs()) {
      const edgepack::TensorView v = p->output("", out.name);
      edgepack::npy::Array a;
      a.descr = edgepack::npy::descr_for(edgepack::dtype_name(v.info.dtype));
      a.shape = v.shape;
      const uint8_t* d = static_cast<const uint8_t*>(v.data);
      a.data.assign(d, d + v.bytes);
      edgepack::npy::save(std::string(argv[4]) + "/" + out.name + ".npy", a);
    }
    std::string timings;
    for (const auto& s : p->timings())
      timings += s.stage + " " + std::to_string(s.runs) + " " + (s.ms >= 0 ? "1" : "0") + "\n";
    edgepack::write_file_atomic(std::string(argv[4]) + "/timings.txt", timings);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pipeline_test: error: %s\n", e.what());
    return 1;
  }
  return 0;
}

// SPDX-License-Identifier: Apache-2.0
// pipeline_test MANIFEST SECTIONS_DIR INPUTS_DIR OUTPUTS_DIR [--backend SPEC]...
//               [--rerun INPUTS_DIR2 OUTPUTS_DIR2]
// Loads a manifest with sections read from files (section name with '/' replaced by '_'),
// sets the pipeline inputs from <name>.npy, runs the whole pipeline and writes every pipeline
// output as <name>.npy plus timings.txt (one "stage runs" line per step) and backends.txt.
// --rerun then sets the inputs from INPUTS_DIR2, runs once more and writes the outputs to
// OUTPUTS_DIR2 (a new frame into the same pipeline).
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

// Every pipeline input from <dir>/<name>.npy.
void set_inputs(edgepack::Pipeline& p, const std::string& dir) {
  for (const auto& in : p.inputs()) {
    const auto a = edgepack::npy::load(dir + "/" + in.name + ".npy");
    p.set_input("", in.name, in.dtype, a.shape, a.data.data(), a.data.size());
  }
}

// Every pipeline output as <dir>/<name>.npy.
void save_outputs(const edgepack::Pipeline& p, const std::string& dir) {
  for (const auto& out : p.outputs()) {
    const edgepack::TensorView v = p.output("", out.name);
    edgepack::npy::Array a;
    a.descr = edgepack::npy::descr_for(edgepack::dtype_name(v.info.dtype));
    a.shape = v.shape;
    const uint8_t* d = static_cast<const uint8_t*>(v.data);
    a.data.assign(d, d + v.bytes);
    edgepack::npy::save(dir + "/" + out.name + ".npy", a);
  }
}
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
    std::string rerun_in, rerun_out;
    for (int i = 5; i + 1 < argc; i += 2) {
      const std::string flag = argv[i];
      if (flag == "--backend") options.backend_preference.push_back(argv[i + 1]);
      if (flag == "--rerun" && i + 2 < argc) {
        rerun_in = argv[i + 1];
        rerun_out = argv[++i + 1];
      }
    }
    auto p =
        edgepack::Pipeline::load(std::string(manifest.begin(), manifest.end()), sections, options);
    p->prepare();
    set_inputs(*p, argv[3]);
    p->run();
    p->run();  // twice: state must not leak between runs
    save_outputs(*p, argv[4]);
    std::string timings;
    for (const auto& s : p->timings())
      timings += s.stage + " " + std::to_string(s.runs) + " " + (s.ms >= 0 ? "1" : "0") + "\n";
    edgepack::write_file_atomic(std::string(argv[4]) + "/timings.txt", timings);
    if (!rerun_in.empty()) {
      set_inputs(*p, rerun_in);
      p->run();
      save_outputs(*p, rerun_out);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pipeline_test: error: %s\n", e.what());
    return 1;
  }
  return 0;
}

// SPDX-License-Identifier: Apache-2.0
// edgepack-graph-run GRAPH --inputs DIR --outputs DIR [--threads T] [--bench N --warmup W]
//                    [--json FILE] [--backend SPEC]... [--placement] [--profile]
// Runs one device graph with <input name>.npy files from DIR and writes <output name>.npy
// (actual shapes: dynamic dim 0 trimmed). --bench times N runs after W warm-up runs and prints
// median/min/mean/p90 in ms; --json writes them (plus load/prepare times) to FILE; --profile adds
// "profile" (per node: op, backend, partition, shapes, median ms, FLOPs, GFLOP/s; per backend:
// device, nodes, partitions, ms) to it, over the timed runs.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/npy.h"
#include "runtime/graph.h"
#include "runtime/interpreter.h"
#include "runtime/kernels/threadpool.h"

namespace {

using clock_type = std::chrono::steady_clock;
double ms_since(clock_type::time_point t0) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
}

int usage() {
  std::fprintf(
      stderr,
      "usage: edgepack-graph-run GRAPH --inputs DIR --outputs DIR [--threads T] "
      "[--bench N --warmup W] [--json FILE] [--backend SPEC]... [--placement] [--profile]\n");
  return 2;
}

// Tensor names may contain '/' or ':'; files use them with those replaced by '_'.
std::string file_name(const std::string& tensor) {
  std::string s = tensor;
  for (char& c : s)
    if (c == '/' || c == ':' || c == '\\') c = '_';
  return s + ".npy";
}

}  // namespace

int main(int argc, char** argv) {
  std::string graph_path, in_dir, out_dir, json_path;
  int threads = 1, bench = 0, warmup = 0;
  bool placement = false, profile = false;
  std::vector<std::string> backends;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc)
        throw edgepack::Error(edgepack::ErrorCode::kInvalidArgument, a + " needs a value");
      return argv[++i];
    };
    try {
      if (a == "--inputs")
        in_dir = next();
      else if (a == "--outputs")
        out_dir = next();
      else if (a == "--threads")
        threads = std::stoi(next());
      else if (a == "--bench")
        bench = std::stoi(next());
      else if (a == "--warmup")
        warmup = std::stoi(next());
      else if (a == "--json")
        json_path = next();
      else if (a == "--backend")
        backends.push_back(next());
      else if (a == "--placement")
        placement = true;
      else if (a == "--profile")
        profile = true;
      else if (!a.empty() && a[0] == '-')
        return usage();
      else if (graph_path.empty())
        graph_path = a;
      else
        return usage();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "edgepack-graph-run: error: %s\n", e.what());
      return 2;
    }
  }
  if (graph_path.empty() || in_dir.empty() || (out_dir.empty() && bench == 0) || threads < 1 ||
      bench < 0 || warmup < 0)
    return usage();
  try {
    const auto t_load = clock_type::now();
    std::ifstream f(graph_path, std::ios::binary);
    if (!f) throw edgepack::Error(edgepack::ErrorCode::kIoError, graph_path + ": cannot open");
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)),
                               std::istreambuf_iterator<char>());
    auto graph = edgepack::load_graph(bytes.data(), bytes.size());
    const double load_ms = ms_since(t_load);
    edgepack::ThreadPool pool(threads);
    edgepack::GraphInstance inst(std::move(graph), edgepack::resolve_backends(backends), &pool,
                                 threads);
    const auto t_prep = clock_type::now();
    inst.prepare();
    const double prepare_ms = ms_since(t_prep);
    if (placement) {  // "<node>\t<backend>" per node
      const auto names = inst.node_backends();
      for (size_t i = 0; i < names.size(); ++i)
        std::printf("%s\t%s\n", inst.graph().nodes[i].name.c_str(), names[i].c_str());
    }
    // The memory plan may reuse an input's arena space once its last reader ran, so every run
    // gets the inputs copied in again (outside the timed region).
    std::vector<std::pair<edgepack::Tensor*, std::vector<uint8_t>>> feeds;
    for (uint32_t t : inst.graph().inputs) {
      edgepack::Tensor& tensor = inst.tensor(t);
      const std::string path = in_dir + "/" + file_name(tensor.name);
      const edgepack::npy::Array a = edgepack::npy::load(path);
      if (edgepack::npy::dtype_for(a.descr) != edgepack::dtype_name(tensor.dtype))
        throw edgepack::Error(
            edgepack::ErrorCode::kInvalidArgument,
            path + ": dtype " + a.descr + ", expected " + edgepack::dtype_name(tensor.dtype));
      bool ok = static_cast<int>(a.shape.size()) == tensor.rank;
      for (int d = 0; ok && d < tensor.rank; ++d)
        ok = d == 0 && tensor.dynamic_dim0 ? a.shape[0] <= tensor.static_shape[0]
                                           : a.shape[d] == tensor.static_shape[d];
      if (!ok)
        throw edgepack::Error(edgepack::ErrorCode::kInvalidArgument,
                              path + ": shape does not match");
      if (tensor.rank) tensor.shape[0] = a.shape[0];
      feeds.emplace_back(&tensor, a.data);
    }
    auto feed = [&] {
      for (auto& [tensor, data] : feeds) std::memcpy(tensor->data, data.data(), data.size());
    };
    feed();
    const auto t_first = clock_type::now();
    inst.run();
    const double first_ms = ms_since(t_first);
    std::vector<double> samples;
    for (int i = 0; i < warmup; ++i) {
      feed();
      inst.run();
    }
    if (profile) inst.set_profiling(true);  // the timed runs (the first one without --bench)
    if (profile && bench == 0) {
      feed();
      inst.run();
    }
    for (int i = 0; i < bench; ++i) {
      feed();
      const auto t0 = clock_type::now();
      inst.run();
      samples.push_back(ms_since(t0));
    }
    if (!out_dir.empty())
      for (uint32_t t : inst.graph().outputs) {
        const edgepack::Tensor& tensor = inst.tensor(t);
        edgepack::npy::Array a;
        a.descr = edgepack::npy::descr_for(edgepack::dtype_name(tensor.dtype));
        a.shape = tensor.dims();
        const uint8_t* p = static_cast<const uint8_t*>(tensor.data);
        a.data.assign(p, p + tensor.bytes());
        edgepack::npy::save(out_dir + "/" + file_name(tensor.name), a);
      }
    double median = 0, mean = 0, p90 = 0, mn = 0, mx = 0;
    if (!samples.empty()) {
      std::vector<double> s = samples;
      std::sort(s.begin(), s.end());
      median = s.size() % 2 ? s[s.size() / 2] : (s[s.size() / 2 - 1] + s[s.size() / 2]) / 2;
      for (double v : s) mean += v;
      mean /= static_cast<double>(s.size());
      p90 = s[std::min(s.size() - 1, static_cast<size_t>(0.9 * static_cast<double>(s.size())))];
      mn = s.front();
      mx = s.back();
      std::printf(
          "runs %zu  median %.3f ms  min %.3f  mean %.3f  p90 %.3f  max %.3f  (threads %d)\n",
          s.size(), median, mn, mean, p90, mx, threads);
    }
    if (!json_path.empty()) {
      std::string j =
          "{\"graph\": \"" + graph_path + "\", \"threads\": " + std::to_string(threads) +
          ", \"load_ms\": " + std::to_string(load_ms) +
          ", \"prepare_ms\": " + std::to_string(prepare_ms) +
          ", \"first_run_ms\": " + std::to_string(first_ms) +
          ", \"arena_bytes\": " + std::to_string(inst.arena_bytes()) +
          ", \"warmup\": " + std::to_string(warmup) + ", \"median_ms\": " + std::to_string(median) +
          ", \"min_ms\": " + std::to_string(mn) + ", \"mean_ms\": " + std::to_string(mean) +
          ", \"p90_ms\": " + std::to_string(p90) + ", \"max_ms\": " + std::to_string(mx) +
          ", \"samples_ms\": [";
      for (size_t i = 0; i < samples.size(); ++i) j += (i ? ", " : "") + std::to_string(samples[i]);
      j += "]";
      if (profile)
        j += ", \"profile\": {\"total_ms\": " + std::to_string(inst.profile_total_ms()) +
             ", \"nodes\": [\n    " + inst.profile_json("") + "\n  ], \"backends\": [\n    " +
             inst.profile_backends_json("") + "\n  ]}";
      j += "}\n";
      edgepack::write_file_atomic(json_path, j);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "edgepack-graph-run: error: %s\n", e.what());
    return 1;
  }
  return 0;
}

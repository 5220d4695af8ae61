// SPDX-License-Identifier: Apache-2.0
// edgepack-run: load an artifact, run its pipeline (or one stage) on .npy inputs, write .npy
// outputs, optionally benchmark. Talks to the library only through the C++ wrapper edgepack.hpp
// (over the C API), linked statically, so the binary runs on a board by itself; .npy files and
// atomic writes come from edgepack_common. Usage and the JSON report are documented in README.md
// next to this file.
#include <dirent.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <cerrno>
#include <map>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/npy.h"
#include "edgepack.hpp"
#include "stats.h"

namespace {

namespace npy = edgepack::npy;

// The C API's dtypes by their .npy names (common/npy.h speaks dtype names and descr strings).
const char* dtype_name(ep_dtype d) {
  switch (d) {
    case EP_DTYPE_FLOAT32:
      return "float32";
    case EP_DTYPE_UINT8:
      return "uint8";
    case EP_DTYPE_INT32:
      return "int32";
    case EP_DTYPE_INT64:
      return "int64";
  }
  return "unknown";
}

bool dtype_from_name(const std::string& name, ep_dtype* out) {
  for (ep_dtype d : {EP_DTYPE_FLOAT32, EP_DTYPE_UINT8, EP_DTYPE_INT32, EP_DTYPE_INT64}) {
    if (name == dtype_name(d)) {
      *out = d;
      return true;
    }
  }
  return false;
}

constexpr int kExitUsage = 2;
constexpr int kExitErrorBase = 10;  // + ep_error_code: 11 invalid argument ... 17 I/O error

const char kUsage[] =
    "usage: edgepack-run ARTIFACT --key DEVICE_KEY --publisher PUBLISHER_PUB [options]\n"
    "\n"
    "Verify, decrypt and run an edgepack artifact.\n"
    "\n"
    "  --key FILE          device (or fleet) X25519 private key, PEM; '-' reads it from\n"
    "                      stdin (a pipe: a key held off the device never touches its disk)\n"
    "  --publisher FILE    publisher Ed25519 public key, PEM\n"
    "  --min-counter N     refuse artifacts with a version counter below N (default 0)\n"
    "  --inputs DIR        read <input name>.npy from DIR (default: zero-filled inputs);\n"
    "                      '@golden' runs the golden inputs stored in the artifact\n"
    "  --outputs DIR       write <output name>.npy to DIR\n"
    "  --stage NAME        run one stage (or model) instead of the whole pipeline\n"
    "  --threads T         kernel threads (default 1; 0: one per online core)\n"
    "  --cpus LIST         run on these CPUs only, e.g. 2,3 or 4-7 (one cluster of a\n"
    "                      big.LITTLE SoC): this thread on the first, each kernel thread\n"
    "                      pinned to one of them in turn\n"
    "  --backend NAME      run the nodes a backend plugin supports on it (opencl:\n"
    "                      libedgepack_opencl.so from EDGEPACK_BACKEND_PATH or the loader's\n"
    "                      path; or a path to a .so); repeatable, CPU runs the rest\n"
    "  --bench N           time N runs after the first one\n"
    "  --warmup W          untimed runs before the N timed ones (default 0)\n"
    "  --json FILE         write the report (schema edgepack.run/1) to FILE\n"
    "  --profile           time every node of the timed runs (of the first run without\n"
    "                      --bench); the report's \"profile\" holds op, shapes, median ms,\n"
    "                      FLOPs and GFLOP/s per node; prints the 10 slowest nodes\n"
    "  --version           print the version and exit\n"
    "  --help              print this help and exit\n"
    "\n"
    "Exit status: 0 ok, 2 usage, 10 + error code otherwise (11 invalid argument, 12 artifact\n"
    "invalid, 13 not found, 14 unsupported, 15 runtime error, 16 out of memory, 17 I/O error).\n";

struct Args {
  std::string artifact, key, publisher, inputs, outputs, stage, json;
  uint64_t min_counter = 0;
  int threads = 1;
  long bench = 0, warmup = 0;
  bool profile = false;
  std::vector<std::string> backends;  // --backend, in order of preference
  std::vector<int32_t> cpus;          // --cpus; empty: not pinned
};

struct Failure {
  int exit_code;
  std::string message;
};

[[noreturn]] void usage_error(const std::string& message) {
  throw Failure{kExitUsage, message + " (see --help)"};
}

Failure failure(const ep::Exception& e, const std::string& context = "") {
  return Failure{kExitErrorBase + static_cast<int>(e.code()),
                 context.empty() ? e.what() : context + ": " + e.what()};
}

// Calls `f`; a library error becomes a Failure whose message starts with `context`.
template <class F>
auto in_context(const std::string& context, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const ep::Exception& e) {
    throw failure(e, context);
  }
}

long parse_long(const std::string& flag, const char* value, long min) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(value, &end, 10);
  if (errno != 0 || end == value || *end != '\0' || v < min) {
    usage_error(flag + " expects an integer >= " + std::to_string(min) + ", got '" + value + "'");
  }
  return v;
}

// "0,2-3" -> {0, 2, 3}: CPU numbers 0..1023, ranges ascending, no duplicates.
std::vector<int32_t> parse_cpu_list(const std::string& text) {
  std::vector<int32_t> cpus;
  auto bad = [&](const std::string& why) -> void {
    usage_error("--cpus expects CPU numbers like 2,3 or 4-7 (" + why + "), got '" + text + "'");
  };
  size_t pos = 0;
  while (pos <= text.size()) {
    const size_t comma = std::min(text.find(',', pos), text.size());
    const std::string item = text.substr(pos, comma - pos);
    const size_t dash = item.find('-');
    auto number = [&](const std::string& digits) -> int32_t {
      if (digits.empty() || digits.size() > 4 ||
          digits.find_first_not_of("0123456789") != std::string::npos)
        bad("'" + item + "' is not a number or range");
      const long v = std::strtol(digits.c_str(), nullptr, 10);
      if (v > 1023) bad("CPU numbers are 0..1023");
      return static_cast<int32_t>(v);
    };
    const int32_t lo = number(item.substr(0, dash));
    const int32_t hi = dash == std::string::npos ? lo : number(item.substr(dash + 1));
    if (hi < lo) bad("range '" + item + "' runs backwards");
    for (int32_t c = lo; c <= hi; ++c) {
      if (std::find(cpus.begin(), cpus.end(), c) != cpus.end()) bad("CPU listed twice");
      cpus.push_back(c);
    }
    pos = comma + 1;
  }
  return cpus;
}

// Pins the calling thread (and so every thread it starts later) to `cpus`.
void pin_this_thread(const std::vector<int32_t>& cpus) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int32_t c : cpus) CPU_SET(c, &set);
  if (sched_setaffinity(0, sizeof(set), &set) != 0) {
    throw Failure{kExitErrorBase + EP_INVALID_ARGUMENT,
                  std::string("--cpus: cannot run on these CPUs: ") + std::strerror(errno)};
  }
}

// Cpus_allowed_list of every thread of this process ("0-3", "2"), from /proc/self/task.
std::vector<std::string> thread_cpus() {
  std::vector<std::string> lists;
  if (DIR* d = opendir("/proc/self/task")) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      std::ifstream f(std::string("/proc/self/task/") + e->d_name + "/status");
      std::string line;
      while (std::getline(f, line)) {
        if (line.rfind("Cpus_allowed_list:", 0) == 0) {
          const size_t v = line.find_first_not_of(" \t", 18);
          lists.push_back(v == std::string::npos ? "" : line.substr(v));
        }
      }
    }
    closedir(d);
  }
  std::sort(lists.begin(), lists.end());
  return lists;
}

Args parse_args(int argc, char** argv, bool* done) {
  Args a;
  *done = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) usage_error(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      *done = true;
      return a;
    } else if (arg == "--version") {
      std::printf("edgepack-run %s (C API %u)\n", ep::version().c_str(), ep::api_version());
      *done = true;
      return a;
    } else if (arg == "--key") {
      a.key = value();
    } else if (arg == "--publisher") {
      a.publisher = value();
    } else if (arg == "--min-counter") {
      const char* v = value();
      char* end = nullptr;
      errno = 0;
      a.min_counter = std::strtoull(v, &end, 10);
      if (errno != 0 || end == v || *end != '\0' || v[0] == '-') {
        usage_error("--min-counter expects a non-negative integer, got '" + std::string(v) + "'");
      }
    } else if (arg == "--inputs") {
      a.inputs = value();
    } else if (arg == "--outputs") {
      a.outputs = value();
    } else if (arg == "--stage") {
      a.stage = value();
    } else if (arg == "--threads") {
      a.threads = static_cast<int>(parse_long(arg, value(), 0));
      if (a.threads == 0) {
        const long cores = sysconf(_SC_NPROCESSORS_ONLN);
        a.threads = cores > 0 ? static_cast<int>(cores) : 1;
      }
    } else if (arg == "--bench") {
      a.bench = parse_long(arg, value(), 1);
    } else if (arg == "--warmup") {
      a.warmup = parse_long(arg, value(), 0);
    } else if (arg == "--cpus") {
      a.cpus = parse_cpu_list(value());
    } else if (arg == "--json") {
      a.json = value();
    } else if (arg == "--profile") {
      a.profile = true;
    } else if (arg == "--backend") {
      a.backends.push_back(value());
    } else if (!arg.empty() && arg[0] == '-') {
      usage_error("unknown option '" + arg + "'");
    } else if (a.artifact.empty()) {
      a.artifact = arg;
    } else {
      usage_error("unexpected argument '" + arg + "'");
    }
  }
  if (a.artifact.empty()) usage_error("missing ARTIFACT");
  if (a.key.empty()) usage_error("missing --key");
  if (a.publisher.empty()) usage_error("missing --publisher");
  return a;
}

double now_ms() {
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

constexpr char kGoldenInputs[] = "@golden";

void load_inputs(ep::Session& s, const std::string& stage, const std::string& dir) {
  for (const ep::TensorInfo& t : s.inputs(stage)) {
    npy::Array a;
    ep_dtype dtype = t.dtype;
    std::string path = dir + "/" + t.name + ".npy";
    if (dir == kGoldenInputs) {
      // The artifact's own copy (ep_session_golden_input): nothing beside it to upload.
      const ep::TensorRef g =
          in_context("--inputs @golden", [&] { return s.golden_input(stage, t.name); });
      path = "golden input '" + t.name + "'";
      a.descr = npy::descr_for(dtype_name(g.dtype));
      a.shape = g.shape;
      const uint8_t* bytes = static_cast<const uint8_t*>(g.data);
      a.data.assign(bytes, bytes + g.bytes);
    }
    if (dir.empty()) {
      a.shape = t.shape;
      size_t count = 1;
      for (int64_t d : t.shape) count *= static_cast<size_t>(d);
      a.data.assign(count * npy::item_size(npy::descr_for(dtype_name(t.dtype))), 0);
    } else {
      if (dir != kGoldenInputs) {
        struct stat st;
        if (stat(path.c_str(), &st) != 0) {
          throw Failure{kExitErrorBase + EP_NOT_FOUND,
                        "missing input '" + t.name + "': " + path + " does not exist"};
        }
        try {
          a = npy::load(path);
        } catch (const edgepack::Error& e) {
          throw Failure{kExitErrorBase + static_cast<int>(e.code()), e.what()};
        }
      }
      const std::string held = npy::dtype_for(a.descr);
      if (!dtype_from_name(held, &dtype) || dtype != t.dtype) {
        throw Failure{kExitErrorBase + EP_INVALID_ARGUMENT, path + ": input '" + t.name +
                                                                "' must be " + dtype_name(t.dtype) +
                                                                ", the file holds " + held};
      }
      // An image input with size bounds takes any height and width within them (API 6).
      std::array<int64_t, 2> lo{}, hi{};
      std::string bounds;
      if (t.shape.size() == 3) {
        std::tie(lo, hi) = in_context(t.name, [&] { return s.input_size_bounds(stage, t.name); });
        if (lo[0] != hi[0] || lo[1] != hi[1])
          bounds = " (height " + std::to_string(lo[0]) + ".." + std::to_string(hi[0]) + ", width " +
                   std::to_string(lo[1]) + ".." + std::to_string(hi[1]) + ")";
      }
      bool shape_ok = a.shape.size() == t.shape.size();
      for (size_t i = 0; shape_ok && i < a.shape.size(); ++i) {
        shape_ok = a.shape[i] == t.shape[i] ||
                   (i == 0 && t.dynamic_dim0 && a.shape[0] <= t.shape[0]) ||
                   (i < 2 && !bounds.empty() && a.shape[i] >= lo[i] && a.shape[i] <= hi[i]);
      }
      if (!shape_ok) {
        throw Failure{kExitErrorBase + EP_INVALID_ARGUMENT,
                      path + ": input '" + t.name + "' must have shape " + shape_text(t.shape) +
                          bounds + ", the file holds " + shape_text(a.shape)};
      }
    }
    in_context("input '" + t.name + "'",
               [&] { s.set_tensor(stage, t.name, dtype, a.shape, a.data.data(), a.data.size()); });
  }
}

void write_outputs(ep::Session& s, const std::string& stage, const std::string& dir) {
  mkdir(dir.c_str(), 0755);  // an existing folder is fine; a failure shows up on write
  for (const ep::TensorInfo& t : s.outputs(stage)) {
    const ep::TensorRef v =
        in_context("output '" + t.name + "'", [&] { return s.get_tensor(stage, t.name); });
    npy::Array a;
    a.descr = npy::descr_for(dtype_name(v.dtype));
    a.shape = v.shape;
    const uint8_t* bytes = static_cast<const uint8_t*>(v.data);
    a.data.assign(bytes, bytes + v.bytes);
    try {
      npy::save(dir + "/" + t.name + ".npy", a);
    } catch (const edgepack::Error& e) {
      throw Failure{kExitErrorBase + EP_IO_ERROR, e.what()};
    }
  }
}

long vm_hwm_kib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string json_string_list(const std::vector<std::string>& v) {
  std::string o = "[";
  for (size_t i = 0; i < v.size(); ++i) o += (i ? ", " : "") + json_string(v[i]);
  return o + "]";
}

std::string json_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.6f", v);
  return buf;
}

std::string json_stats(const std::vector<double>& samples) {
  const edgepack_run::Summary s = edgepack_run::summarize(samples);
  std::ostringstream o;
  o << "{\"min\": " << json_number(s.min) << ", \"mean\": " << json_number(s.mean)
    << ", \"p50\": " << json_number(s.p50) << ", \"p90\": " << json_number(s.p90)
    << ", \"p99\": " << json_number(s.p99) << ", \"max\": " << json_number(s.max)
    << ", \"std\": " << json_number(s.std) << ", \"samples\": [";
  for (size_t i = 0; i < samples.size(); ++i) o << (i ? ", " : "") << json_number(samples[i]);
  o << "]}";
  return o.str();
}

// The --json report, written atomically; a failure is an I/O error (exit 17).
void write_report(const std::string& path, const std::string& text) {
  try {
    edgepack::write_file_atomic(path, text);
  } catch (const edgepack::Error& e) {
    throw Failure{kExitErrorBase + EP_IO_ERROR, e.what()};
  }
}

struct Report {
  double verify_ms = 0, decrypt_ms = 0, prepare_ms = 0, first_ms = 0;
  std::vector<double> end_to_end;
  std::vector<std::string> stage_order;
  std::map<std::string, std::vector<double>> stage_samples;
  std::map<std::string, int> stage_runs;
  std::string profile;                   // ep_session_profile_json's text, "" without --profile
  std::vector<std::string> thread_cpus;  // each thread's allowed CPUs once the session runs
};

std::string json_int_list(const std::vector<int32_t>& v) {
  if (v.empty()) return "null";
  std::string o = "[";
  for (size_t i = 0; i < v.size(); ++i) o += (i ? ", " : "") + std::to_string(v[i]);
  return o + "]";
}

void record_stage_timings(const ep::Session& s, Report* r) {
  for (const ep::StageTiming& t : s.stage_timings()) {
    if (r->stage_samples.find(t.stage) == r->stage_samples.end()) r->stage_order.push_back(t.stage);
    r->stage_samples[t.stage].push_back(t.ms);
    r->stage_runs[t.stage] = t.runs;
  }
}

std::string report_json(const Args& a, const Report& r) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  std::ostringstream o;
  o << "{\n  \"schema\": \"edgepack.run/1\",\n"
    << "  \"edgepack_version\": " << json_string(ep::version()) << ",\n"
    << "  \"api_version\": " << ep::api_version() << ",\n"
    << "  \"artifact\": " << json_string(a.artifact) << ",\n"
    << "  \"stage\": " << (a.stage.empty() ? "null" : json_string(a.stage)) << ",\n"
    << "  \"threads\": " << a.threads << ",\n"
    << "  \"cpus\": " << json_int_list(a.cpus) << ",\n"
    << "  \"thread_cpus\": " << json_string_list(r.thread_cpus) << ",\n"
    << "  \"load\": {\"verify_ms\": " << json_number(r.verify_ms)
    << ", \"decrypt_ms\": " << json_number(r.decrypt_ms)
    << ", \"prepare_ms\": " << json_number(r.prepare_ms)
    << ", \"total_ms\": " << json_number(r.verify_ms + r.decrypt_ms + r.prepare_ms) << "},\n"
    << "  \"first_inference_ms\": " << json_number(r.first_ms) << ",\n"
    << "  \"warmup\": " << a.warmup << ",\n"
    << "  \"iterations\": " << r.end_to_end.size() << ",\n"
    << "  \"end_to_end\": " << json_stats(r.end_to_end) << ",\n"
    << "  \"stages\": [";
  for (size_t i = 0; i < r.stage_order.size(); ++i) {
    const std::string& name = r.stage_order[i];
    o << (i ? ",\n    " : "\n    ") << "{\"stage\": " << json_string(name)
      << ", \"runs\": " << r.stage_runs.at(name)
      << ", \"ms\": " << json_stats(r.stage_samples.at(name)) << "}";
  }
  o << (r.stage_order.empty() ? "" : "\n  ") << "],\n"
    << "  \"profile\": " << (r.profile.empty() ? "null" : r.profile) << ",\n"
    << "  \"peak_rss_kib\": " << ru.ru_maxrss << ",\n"
    << "  \"vm_hwm_kib\": " << vm_hwm_kib() << "\n}\n";
  return o.str();
}

// The `n` slowest nodes of a profile (ep_session_profile_json's text: one node object per line,
// flat fields), as a table on stdout.
void print_profile_top(const std::string& profile, size_t n) {
  struct Row {
    double ms, gflops;
    std::string stage, name, op;
  };
  auto field = [](const std::string& line, const std::string& key) -> std::string {
    const std::string k = "\"" + key + "\": ";
    const size_t at = line.find(k);
    if (at == std::string::npos) return "";
    size_t start = at + k.size(), end = start;
    if (line[start] == '"') {
      end = ++start;
      while (end < line.size() && line[end] != '"') end += line[end] == '\\' ? 2 : 1;
    } else {
      end = line.find_first_of(",}", start);
    }
    return line.substr(start, end - start);
  };
  std::vector<Row> rows;
  double total = 0;
  std::istringstream in(profile);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find("\"op\": ") == std::string::npos) continue;
    Row row{std::strtod(field(line, "ms").c_str(), nullptr),
            std::strtod(field(line, "gflops").c_str(), nullptr), field(line, "stage"),
            field(line, "name"), field(line, "op")};
    total += row.ms;
    rows.push_back(row);
  }
  std::sort(rows.begin(), rows.end(), [](const Row& x, const Row& y) { return x.ms > y.ms; });
  std::printf("profile: %zu nodes, %.3f ms summed (medians); slowest:\n", rows.size(), total);
  for (size_t i = 0; i < rows.size() && i < n; ++i)
    std::printf("  %8.3f ms %5.1f%% %8.2f GFLOP/s  %-18s %s%s%s\n", rows[i].ms,
                total > 0 ? 100.0 * rows[i].ms / total : 0.0, rows[i].gflops, rows[i].op.c_str(),
                rows[i].stage.c_str(), rows[i].stage.empty() ? "" : ": ", rows[i].name.c_str());
}

// `--key -`: the PEM from stdin (at most 16 KiB; a key is a few hundred bytes).
std::string read_key_stdin() {
  std::string pem;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, stdin)) > 0) {
    pem.append(buf, n);
    if (pem.size() > 16384) throw Failure{kExitUsage, "--key -: more than 16 KiB on stdin"};
  }
  std::fill(buf, buf + sizeof buf, '\0');
  if (pem.empty()) throw Failure{kExitErrorBase + EP_NOT_FOUND, "--key -: no key on stdin"};
  return pem;
}

int run(const Args& a) {
  ep::Env env;
  ep::Options opts;
  opts.threads(a.threads);
  if (!a.cpus.empty()) {
    pin_this_thread(a.cpus);
    in_context("--cpus", [&] { opts.cpus(a.cpus); });
  }
  if (!a.backends.empty()) in_context("--backend", [&] { opts.backend_preference(a.backends); });
  opts.min_version_counter(a.min_counter);

  // The library keeps no copy of the key; ep::Key wipes its own when it goes.
  ep::Session s = [&] {
    const ep::Key device =
        a.key == "-" ? ep::Key::pem_bytes(read_key_stdin()) : ep::Key::pem_file(a.key);
    return in_context(a.artifact, [&] {
      return ep::Session::from_file(env, a.artifact, device, ep::Key::pem_file(a.publisher), &opts);
    });
  }();
  s.prepare();

  const std::string& stage = a.stage;
  if (!stage.empty()) {
    std::string known;
    bool found = false;
    for (const std::string& name : s.stage_names()) {
      found = found || stage == name;
      known += (known.empty() ? "" : ", ") + name;
    }
    if (!found) {
      throw Failure{kExitErrorBase + EP_NOT_FOUND,
                    "unknown stage '" + stage + "' (stages: " + known + ")"};
    }
  }

  Report r;
  const ep::LoadTiming load = s.load_timing();
  r.verify_ms = load.verify_ms;
  r.decrypt_ms = load.decrypt_ms;
  r.prepare_ms = load.prepare_ms;
  load_inputs(s, stage, a.inputs);

  auto run_once = [&] { in_context("run", [&] { s.run(stage); }); };
  if (a.profile && a.bench == 0) s.set_profiling(true);
  double t = now_ms();
  run_once();
  r.first_ms = now_ms() - t;
  r.thread_cpus = thread_cpus();
  // Outputs of the first run: the same inputs give the same outputs on every later run.
  if (!a.outputs.empty()) write_outputs(s, stage, a.outputs);

  for (long i = 0; i < a.warmup && a.bench > 0; ++i) run_once();
  if (a.profile && a.bench > 0) s.set_profiling(true);
  for (long i = 0; i < a.bench; ++i) {
    t = now_ms();
    run_once();
    r.end_to_end.push_back(now_ms() - t);
    record_stage_timings(s, &r);
  }
  if (a.bench == 0) record_stage_timings(s, &r);
  if (a.profile) r.profile = s.profile_json();

  if (!a.json.empty()) write_report(a.json, report_json(a, r));
  std::printf("load: verify %.3f ms, decrypt %.3f ms, prepare %.3f ms; first run %.3f ms\n",
              r.verify_ms, r.decrypt_ms, r.prepare_ms, r.first_ms);
  if (!r.end_to_end.empty()) {
    const edgepack_run::Summary e = edgepack_run::summarize(r.end_to_end);
    std::printf("bench: %zu runs, p50 %.3f ms, p90 %.3f ms, min %.3f ms, max %.3f ms\n",
                r.end_to_end.size(), e.p50, e.p90, e.min, e.max);
  }
  if (a.profile) print_profile_top(r.profile, 10);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    bool done = false;
    const Args args = parse_args(argc, argv, &done);
    if (done) return 0;
    return run(args);
  } catch (const Failure& f) {
    std::fprintf(stderr, "edgepack-run: error: %s\n", f.message.c_str());
    return f.exit_code;
  } catch (const ep::Exception& e) {
    std::fprintf(stderr, "edgepack-run: error: %s\n", e.what());
    return failure(e).exit_code;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "edgepack-run: error: %s\n", e.what());
    return 1;
  }
}

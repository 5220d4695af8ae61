// SPDX-License-Identifier: Apache-2.0
#include "facts.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/statvfs.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace epagent {
namespace {

std::string json_str(const std::string& s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      o += '\\';
      o += char(c);
    } else if (c < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", c);
      o += b;
    } else {
      o += char(c);
    }
  }
  return o + "\"";
}

// Up to `max` bytes of a file (plain POSIX: iostreams would pull libc++'s locale code into
// the static agent). Empty when it cannot be read.
std::string read_file(const std::string& path, size_t max) {
  std::string out;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char buf[4096];
  while (out.size() < max) {
    ssize_t n = ::read(fd, buf, std::min(sizeof buf, max - out.size()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, size_t(n));
  }
  ::close(fd);
  return out;
}

std::string read_small(const std::string& path) {
  std::string s = read_file(path, 4096);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// Calls `fn(line)` for each line of `text` (without the newline).
template <typename Fn>
void each_line(const std::string& text, Fn fn) {
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    fn(text.substr(start, end - start));
    start = end + 1;
  }
}

std::string num_or_null(const std::string& s) {
  if (s.empty() || s.find_first_not_of("-0123456789") != std::string::npos) return "null";
  return s;
}

std::string cpu_model() {
  std::string model, hardware, parts;
  each_line(read_file("/proc/cpuinfo", 1 << 20), [&](const std::string& line) {
    auto colon = line.find(':');
    if (colon == std::string::npos || colon == 0) return;
    std::string key = line.substr(0, line.find_last_not_of(" \t", colon - 1) + 1);
    std::string val = line.substr(std::min(line.size(), colon + 2));
    if (key == "model name" && model.empty()) model = val;
    if (key == "Hardware" && hardware.empty()) hardware = val;
    if (key == "CPU part" && parts.find(val) == std::string::npos)
      parts += (parts.empty() ? "" : ",") + val;
  });
  if (!model.empty()) return model;
  if (!hardware.empty()) return hardware;
  return parts.empty() ? "" : "CPU part " + parts;
}

long meminfo_kb(const std::string& key) {
  long v = -1;
  const std::string want = key + ":";
  each_line(read_file("/proc/meminfo", 1 << 16), [&](const std::string& line) {
    if (v < 0 && line.compare(0, want.size(), want) == 0)
      v = std::strtol(line.c_str() + want.size(), nullptr, 10);
  });
  return v;
}

// Version of the system's shared C library: the string "GNU C Library ... version X.Y"
// inside libc.so.6. A static agent cannot ask its own libc, which is the build machine's.
std::string system_glibc() {
  const char* dirs[] = {"/lib",
                        "/lib64",
                        "/usr/lib",
                        "/lib/aarch64-linux-gnu",
                        "/lib/arm-linux-gnueabihf",
                        "/lib/x86_64-linux-gnu",
                        "/usr/lib/aarch64-linux-gnu",
                        "/usr/lib/arm-linux-gnueabihf",
                        "/usr/lib/x86_64-linux-gnu"};
  for (const char* d : dirs) {
    std::string data = read_file(std::string(d) + "/libc.so.6", size_t(64) << 20);
    if (data.empty()) continue;
    const std::string marker = "GNU C Library";
    size_t p = data.find(marker);
    while (p != std::string::npos) {
      size_t v = data.find("version ", p);
      size_t stop = data.find('\0', p);
      if (v != std::string::npos && v < stop) {
        size_t s = v + 8, e = s;
        while (e < data.size() && (isdigit(static_cast<unsigned char>(data[e])) || data[e] == '.'))
          ++e;
        while (e > s && data[e - 1] == '.') --e;
        if (e > s) return data.substr(s, e - s);
      }
      p = data.find(marker, p + 1);
    }
  }
  return "";
}

std::string cpus_json() {
  std::string o = "[";
  long n = sysconf(_SC_NPROCESSORS_CONF);
  bool first = true;
  for (long i = 0; i < n; ++i) {
    std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(i) + "/cpufreq/";
    std::string gov = read_small(base + "scaling_governor");
    std::string cur = read_small(base + "scaling_cur_freq");
    if (gov.empty() && cur.empty()) continue;
    o += first ? "" : ",";
    first = false;
    o += "{\"cpu\":" + std::to_string(i) + ",\"governor\":" + json_str(gov) +
         ",\"cur_khz\":" + num_or_null(cur) +
         ",\"min_khz\":" + num_or_null(read_small(base + "scaling_min_freq")) +
         ",\"max_khz\":" + num_or_null(read_small(base + "scaling_max_freq")) + "}";
  }
  return o + "]";
}

std::string thermal_json() {
  std::vector<std::string> zones;
  if (DIR* d = opendir("/sys/class/thermal")) {
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n.rfind("thermal_zone", 0) == 0) zones.push_back(n);
    }
    closedir(d);
  }
  std::sort(zones.begin(), zones.end());
  std::string o = "[";
  bool first = true;
  for (const auto& z : zones) {
    std::string t = read_small("/sys/class/thermal/" + z + "/temp");
    if (t.empty()) continue;
    o += first ? "" : ",";
    first = false;
    o += "{\"zone\":" + json_str(z) +
         ",\"type\":" + json_str(read_small("/sys/class/thermal/" + z + "/type")) +
         ",\"millicelsius\":" + num_or_null(t) + "}";
  }
  return o + "]";
}

}  // namespace

std::string read_boot_id() {
  return read_small("/proc/sys/kernel/random/boot_id");
}

std::string device_facts_json(const std::string& root) {
  struct utsname u {};
  uname(&u);
  struct statvfs sv {};
  unsigned long long free_b = 0, total_b = 0;
  if (statvfs(root.c_str(), &sv) == 0) {
    free_b = (unsigned long long)sv.f_bavail * sv.f_frsize;
    total_b = (unsigned long long)sv.f_blocks * sv.f_frsize;
  }
  struct sysinfo si {};
  long uptime = sysinfo(&si) == 0 ? si.uptime : -1;
  std::string glibc = system_glibc();
  std::string o = "{";
  o += "\"kernel\":" + json_str(u.release);
  o += ",\"kernel_version\":" + json_str(u.version);
  o += ",\"machine\":" + json_str(u.machine);
  o += ",\"hostname\":" + json_str(u.nodename);
  o += ",\"cpu_model\":" + json_str(cpu_model());
  o += ",\"cpu_cores\":" + std::to_string(sysconf(_SC_NPROCESSORS_ONLN));
  o += ",\"mem_total_kb\":" + std::to_string(meminfo_kb("MemTotal"));
  o += ",\"mem_available_kb\":" + std::to_string(meminfo_kb("MemAvailable"));
  o += ",\"root\":" + json_str(root);
  o += ",\"root_free_bytes\":" + std::to_string(free_b);
  o += ",\"root_total_bytes\":" + std::to_string(total_b);
  o += ",\"glibc\":" + (glibc.empty() ? std::string("null") : json_str(glibc));
  o += ",\"cpus\":" + cpus_json();
  o += ",\"thermal\":" + thermal_json();
  o += ",\"uptime_s\":" + std::to_string(uptime);
  o += ",\"pid\":" + std::to_string(getpid());
  return o + "}";
}

}  // namespace epagent

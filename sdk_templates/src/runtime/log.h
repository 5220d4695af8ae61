// SPDX-License-Identifier: Apache-2.0
// The library's one way to say something outside a status: a process-wide sink that the C API
// sets (ep_set_log_callback). Without a sink, a line "edgepack: <message>" goes to stderr.
#pragma once

#include <cstdio>
#include <mutex>
#include <string>

namespace edgepack {

enum class LogLevel : int { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

using LogFn = void (*)(void* user_data, int level, const char* message);

struct LogSink {
  std::mutex mutex;
  LogFn fn = nullptr;
  void* user_data = nullptr;
};

// One instance per shared library / program (an inline function's static is unique).
inline LogSink& log_sink() {
  static LogSink sink;
  return sink;
}

inline void set_log_sink(LogFn fn, void* user_data) {
  LogSink& s = log_sink();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.fn = fn;
  s.user_data = user_data;
}

inline void log(LogLevel level, const std::string& message) {
  LogSink& s = log_sink();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (s.fn != nullptr) {
    s.fn(s.user_data, static_cast<int>(level), message.c_str());
  } else {
    std::fprintf(stderr, "edgepack: %s\n", message.c_str());
  }
}

}  // namespace edgepack

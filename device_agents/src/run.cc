// SPDX-License-Identifier: Apache-2.0
// RUN: fork/exec an argv inside the root with a watchdog, separate stdout/stderr.
//
// The program starts in a session of its own. The agent is a child subreaper (main.cc), so
// every descendant that escapes the session (`setsid`, a double fork) is reparented to the
// agent and the sweep below still finds it: on timeout, when the host goes away, and after
// the program exits, every descendant is ended. While the program runs the agent keeps
// reading its input and answers PING.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>

#include "agent.h"

extern char** environ;

namespace epagent {
namespace {

int64_t now_ns() {
  struct timespec ts {};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

constexpr int64_t kMs = 1000000;

// ppid and session of a live (not zombie) process, from /proc/<pid>/stat.
bool proc_stat(pid_t pid, pid_t* ppid, pid_t* sid) {
  char path[64], buf[512];
  std::snprintf(path, sizeof path, "/proc/%d/stat", int(pid));
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  const char* close_paren = std::strrchr(buf, ')');  // the command name may hold ')' or spaces
  char state = 0;
  int pp = 0, pg = 0, s = 0;
  if (!close_paren || std::sscanf(close_paren + 1, " %c %d %d %d", &state, &pp, &pg, &s) != 4)
    return false;
  if (state == 'Z' || state == 'X') return false;
  *ppid = pid_t(pp);
  *sid = pid_t(s);
  return true;
}

// Live descendants of this agent, plus any process still in the RUN's session `sid` (0: none;
// once the program is reaped its pid, and so its session id, may be reused).
std::vector<pid_t> descendants(pid_t sid) {
  std::map<pid_t, pid_t> parent;
  std::vector<pid_t> out;
  DIR* d = ::opendir("/proc");
  if (!d) return out;
  while (struct dirent* e = ::readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (pid <= 0 || *end != '\0') continue;
    pid_t pp = 0, s = 0;
    if (!proc_stat(pid_t(pid), &pp, &s)) continue;
    parent[pid_t(pid)] = pp;
    if (sid > 0 && s == sid && pid_t(pid) != ::getpid()) out.push_back(pid_t(pid));
  }
  ::closedir(d);
  const pid_t self = ::getpid();
  for (const auto& [pid, pp] : parent) {
    pid_t p = pp;
    for (int depth = 0; p > 1 && depth < 4096; ++depth) {
      if (p == self) {
        out.push_back(pid);
        break;
      }
      auto it = parent.find(p);
      if (it == parent.end()) break;
      p = it->second;
    }
  }
  return out;
}

// The state of the RUN's program and of the processes it left behind.
struct Child {
  pid_t pid = -1;
  bool exited = false;
  int status = 0;
  struct rusage ru {};
  int64_t exited_at = 0;

  // Reaps every finished child of the agent (the program and reparented orphans).
  void reap() {
    for (;;) {
      int st = 0;
      struct rusage r {};
      pid_t got = ::wait4(-1, &st, WNOHANG, &r);
      if (got <= 0) return;
      if (got == pid) {
        exited = true;
        status = st;
        ru = r;
        exited_at = now_ns();
      }
    }
  }

  // Sends `sig` to the program's session and to every descendant of the agent.
  void signal_all(int sig) {
    if (!exited) ::kill(-pid, sig);
    for (pid_t p : descendants(exited ? 0 : pid)) ::kill(p, sig);
  }

  // SIGKILL until no descendant is left (a fork racing with the sweep is caught next round).
  void kill_all() {
    for (int round = 0; round < 50; ++round) {
      if (!exited) ::kill(-pid, SIGKILL);
      std::vector<pid_t> left = descendants(exited ? 0 : pid);
      for (pid_t p : left) ::kill(p, SIGKILL);
      reap();
      if (left.empty()) return;
      ::usleep(10000);
      reap();
    }
  }
};

bool valid_env(const std::string& e) {
  size_t eq = e.find('=');
  return eq != std::string::npos && eq > 0 && !has_nul(e);
}

// The agent's environment with the host's entries replacing those of the same name.
std::vector<std::string> merged_env(const std::vector<std::string>& host) {
  std::vector<std::string> out;
  auto name_of = [](const std::string& e) { return e.substr(0, e.find('=')); };
  std::map<std::string, size_t> index;
  for (char** e = environ; *e; ++e) {
    std::string entry(*e);
    if (entry.find('=') == std::string::npos) continue;
    index[name_of(entry)] = out.size();
    out.push_back(entry);
  }
  for (const auto& e : host) {
    auto it = index.find(name_of(e));
    if (it != index.end()) {
      out[it->second] = e;
    } else {
      index[name_of(e)] = out.size();
      out.push_back(e);
    }
  }
  return out;
}

// Reads an optional int field; false (and an ERROR sent by the caller) when it is present
// but malformed or outside [lo, hi].
bool int_option(const Fields& in, const char* key, int64_t lo, int64_t hi, int64_t* v) {
  if (!in.has(key)) return true;
  return in.get_int(key, v) && *v >= lo && *v <= hi;
}

}  // namespace

void Agent::on_run(uint32_t seq, const Fields& in) {
  std::vector<std::string> argv = in.get_all("argv");
  std::vector<std::string> env = in.get_all("env");
  std::string cwd_rel = ".", cwd, exe;
  int64_t timeout_ms = 0, stream = 0, max_output = kDefaultOutput;
  in.get_str("cwd", &cwd_rel);
  if (!int_option(in, "timeout_ms", 0, kMaxTimeoutMs, &timeout_ms) ||
      !int_option(in, "stream", 0, 1, &stream) ||
      !int_option(in, "max_output", 0, kMaxOutput, &max_output)) {
    send_error(seq, "bad_request",
               "RUN needs timeout_ms 0.." + std::to_string(kMaxTimeoutMs) + ", stream 0 or 1, " +
                   "max_output 0.." + std::to_string(kMaxOutput));
    return;
  }
  if (argv.empty() || int64_t(argv.size()) > kMaxArgv || int64_t(env.size()) > kMaxEnv) {
    send_error(seq, "bad_request",
               "RUN needs 1.." + std::to_string(kMaxArgv) + " argv and at most " +
                   std::to_string(kMaxEnv) + " env entries");
    return;
  }
  for (const auto& a : argv) {
    if (has_nul(a)) {
      send_error(seq, "bad_request", "RUN argv holds a NUL byte");
      return;
    }
  }
  for (const auto& e : env) {
    if (!valid_env(e)) {
      send_error(seq, "bad_request", "RUN env entries must be NAME=VALUE without NUL bytes");
      return;
    }
  }
  // Bytes for the program's stdin (e.g. a fleet key: handed through a pipe, never a file).
  std::string input;
  const bool has_input = in.get_str("stdin", &input);
  if (int64_t(input.size()) > kMaxStdin) {
    send_error(seq, "too_large", "RUN stdin is limited to " + std::to_string(kMaxStdin) + " bytes");
    return;
  }
  if (cwd_rel == "." || cwd_rel.empty()) {
    cwd = cfg_.root;
  } else if (!resolve(seq, cwd_rel, &cwd)) {
    return;
  }
  if (!resolve(seq, argv[0], &exe)) return;
  struct stat st {};
  if (::stat(exe.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    send_error(seq, "not_found", "no program '" + argv[0] + "' under the root");
    return;
  }
  if (::stat(cwd.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    send_error(seq, "not_found", "no folder '" + cwd_rel + "' under the root");
    return;
  }
  int out_pipe[2], err_pipe[2], exec_pipe[2], in_pipe[2] = {-1, -1};
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0 ||
      ::pipe2(exec_pipe, O_CLOEXEC) != 0 || (has_input && ::pipe2(in_pipe, O_CLOEXEC) != 0)) {
    send_error(seq, "exec", std::string("pipe: ") + std::strerror(errno));
    return;
  }
  if (has_input) {
    // At most PIPE_BUF bytes into an empty pipe: written at once, before the program runs.
    bool ok = write_all(in_pipe[1], reinterpret_cast<const uint8_t*>(input.data()), input.size());
    std::fill(input.begin(), input.end(), '\0');
    ::close(in_pipe[1]);
    if (!ok) {
      ::close(in_pipe[0]);
      send_error(seq, "exec", std::string("stdin pipe: ") + std::strerror(errno));
      return;
    }
  }
  std::vector<std::string> envs = merged_env(env);
  std::vector<char*> cargv, cenv;
  for (auto& a : argv) cargv.push_back(&a[0]);
  cargv.push_back(nullptr);
  cargv[0] = &exe[0];
  for (auto& e : envs) cenv.push_back(&e[0]);
  cenv.push_back(nullptr);

  int64_t start = now_ns();
  pid_t pid = ::fork();
  if (pid < 0) {
    send_error(seq, "exec", std::string("fork: ") + std::strerror(errno));
    return;
  }
  if (pid == 0) {
    ::setsid();  // its own session and process group: the watchdog's first target
    int devnull = has_input ? in_pipe[0] : ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    signal(SIGPIPE, SIG_DFL);
    if (::chdir(cwd.c_str()) == 0) ::execve(cargv[0], cargv.data(), cenv.data());
    int e = errno;
    ssize_t ignored = ::write(exec_pipe[1], &e, sizeof e);
    (void)ignored;
    ::_exit(127);
  }
  if (has_input) ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  ::close(exec_pipe[1]);
  int exec_errno = 0;
  bool exec_failed = ::read(exec_pipe[0], &exec_errno, sizeof exec_errno) == sizeof exec_errno;
  ::close(exec_pipe[0]);

  Child child;
  child.pid = pid;
  std::string captured[2];
  bool truncated[2] = {false, false};
  const char* names[2] = {"stdout", "stderr"};
  struct pollfd fds[3] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}, {in_fd_, POLLIN, 0}};
  int open_fds = 2;
  bool timed_out = false, swept = false;
  int64_t kill_at = 0;  // when SIGKILL follows the SIGTERM
  std::vector<uint8_t> buf(32768);
  for (;;) {
    child.reap();
    if (child.exited && open_fds == 0) break;
    int64_t t = now_ns();
    if (timeout_ms > 0 && !timed_out && t - start > timeout_ms * kMs) {
      timed_out = true;
      child.signal_all(SIGTERM);
      kill_at = t + kKillGraceMs * kMs;
    }
    if ((kill_at && t > kill_at) || (host_gone_ && !swept) ||
        (child.exited && !swept && t - child.exited_at > kOrphanGraceMs * kMs)) {
      // Past the grace after SIGTERM, the host is gone, or the program exited and something
      // it started still holds the output pipes: every descendant is ended.
      child.kill_all();
      kill_at = 0;
      swept = swept || child.exited || host_gone_;
    }
    if (swept && child.exited && t - child.exited_at > (kOrphanGraceMs + 2000) * kMs) {
      break;  // the pipes are still open after the sweep: nothing more will come
    }
    if (host_gone_) fds[2].fd = -1;
    int rc = ::poll(fds, 3, 50);
    if (rc < 0 && errno != EINTR) break;
    if (rc <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = ::read(fds[i].fd, buf.data(), buf.size());
      if (n <= 0) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
        continue;
      }
      if (stream) {
        send(kLog, seq,
             FieldWriter()
                 .add_str("stream", names[i])
                 .add_bytes("data", buf.data(), size_t(n))
                 .take());
      } else {
        size_t room =
            size_t(max_output) > captured[i].size() ? size_t(max_output) - captured[i].size() : 0;
        size_t take = size_t(n) < room ? size_t(n) : room;
        captured[i].append(reinterpret_cast<char*>(buf.data()), take);
        if (take < size_t(n)) truncated[i] = true;
      }
    }
    if (fds[2].fd >= 0 && (fds[2].revents & (POLLIN | POLLHUP | POLLERR))) serve_during_run(seq);
  }
  for (int i = 0; i < 2; ++i)
    if (fds[i].fd >= 0) ::close(fds[i].fd);
  child.kill_all();  // nothing a RUN started outlives it
  while (!child.exited) {
    int st = 0;
    struct rusage r {};
    if (::wait4(pid, &st, 0, &r) == pid) {
      child.exited = true;
      child.status = st;
      child.ru = r;
    } else if (errno != EINTR) {
      break;
    }
  }
  int status = child.status;
  const struct rusage& ru = child.ru;
  int64_t wall = (child.exited_at ? child.exited_at : now_ns()) - start;
  if (exec_failed) {
    send_error(seq, "exec", "cannot execute '" + argv[0] + "': " + std::strerror(exec_errno));
    return;
  }
  FieldWriter w;
  w.add_int("exit_code", WIFEXITED(status) ? WEXITSTATUS(status) : -1)
      .add_int("signal", WIFSIGNALED(status) ? WTERMSIG(status) : 0)
      .add_int("core_dumped", WIFSIGNALED(status) && WCOREDUMP(status) ? 1 : 0)
      .add_int("timed_out", timed_out ? 1 : 0)
      .add_int("wall_ns", wall)
      .add_int("utime_us", int64_t(ru.ru_utime.tv_sec) * 1000000 + ru.ru_utime.tv_usec)
      .add_int("stime_us", int64_t(ru.ru_stime.tv_sec) * 1000000 + ru.ru_stime.tv_usec)
      .add_int("maxrss_kb", ru.ru_maxrss);
  if (!stream) {
    // Output that does not fit one RESULT frame travels first as LOG frames (at most
    // kMaxChunk bytes each); RESULT then says so and how many bytes each stream holds.
    const bool fits = int64_t(captured[0].size() + captured[1].size()) + 1024 <= kMaxPayload;
    for (int i = 0; i < 2; ++i) {
      const std::string& c = captured[i];
      if (!fits) {
        for (size_t off = 0; off < c.size(); off += size_t(kMaxChunk)) {
          size_t n = std::min(size_t(kMaxChunk), c.size() - off);
          send(kLog, seq,
               FieldWriter()
                   .add_str("stream", names[i])
                   .add_bytes("data", reinterpret_cast<const uint8_t*>(c.data()) + off, n)
                   .take());
        }
      }
      w.add_bytes(names[i], reinterpret_cast<const uint8_t*>(c.data()), fits ? c.size() : 0);
      w.add_int(std::string(names[i]) + "_size", int64_t(c.size()));
      w.add_int(std::string(names[i]) + "_truncated", truncated[i] ? 1 : 0);
    }
    w.add_int("output_streamed", fits ? 0 : 1);
  }
  send_cached(kResult, seq, w.take());
}

}  // namespace epagent

// SPDX-License-Identifier: Apache-2.0
// RUN: fork/exec an argv inside the root with a watchdog, separate stdout/stderr.
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
#include <cstring>

#include "agent.h"

extern char** environ;

namespace epagent {
namespace {

int64_t now_ns() {
  struct timespec ts {};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

}  // namespace

void Agent::on_run(uint32_t seq, const Fields& in) {
  std::vector<std::string> argv = in.get_all("argv");
  std::vector<std::string> env = in.get_all("env");
  std::string cwd_rel = ".", cwd, exe;
  int64_t timeout_ms = 0, stream = 0, max_output = 1 << 20;
  in.get_str("cwd", &cwd_rel);
  in.get_int("timeout_ms", &timeout_ms);
  in.get_int("stream", &stream);
  in.get_int("max_output", &max_output);
  if (argv.empty()) {
    send_error(seq, "bad_request", "RUN needs at least one argv");
    return;
  }
  // Bytes for the program's stdin (e.g. a fleet key: handed through a pipe, never a file).
  std::string input;
  const bool has_input = in.get_str("stdin", &input);
  if (input.size() > kMaxStdin) {
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
  std::vector<std::string> envs;
  for (char** e = environ; *e; ++e) envs.emplace_back(*e);
  for (const auto& e : env) envs.push_back(e);  // later entries win in getenv
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
    ::setpgid(0, 0);
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
  ::setpgid(pid, pid);
  if (has_input) ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  ::close(exec_pipe[1]);
  int exec_errno = 0;
  bool exec_failed = ::read(exec_pipe[0], &exec_errno, sizeof exec_errno) == sizeof exec_errno;
  ::close(exec_pipe[0]);

  std::string captured[2];
  bool truncated[2] = {false, false};
  const char* names[2] = {"stdout", "stderr"};
  struct pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  bool timed_out = false;
  int64_t kill_at = 0;  // when SIGKILL follows the SIGTERM
  std::vector<uint8_t> buf(32768);
  while (open_fds > 0) {
    int wait_ms = 200;
    int rc = ::poll(fds, 2, wait_ms);
    if (rc < 0 && errno != EINTR) break;
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
    int64_t t = now_ns();
    if (timeout_ms > 0 && !timed_out && t - start > timeout_ms * 1000000) {
      timed_out = true;
      ::kill(-pid, SIGTERM);
      kill_at = t + int64_t(2) * 1000000000;
    }
    if (timed_out && kill_at && t > kill_at) {
      ::kill(-pid, SIGKILL);
      kill_at = 0;
    }
  }
  for (auto& p : fds)
    if (p.fd >= 0) ::close(p.fd);
  int status = 0;
  struct rusage ru {};
  while (::wait4(pid, &status, 0, &ru) < 0 && errno == EINTR) {
  }
  int64_t wall = now_ns() - start;
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
    for (int i = 0; i < 2; ++i) {
      w.add_bytes(names[i], reinterpret_cast<const uint8_t*>(captured[i].data()),
                  captured[i].size());
      w.add_int(std::string(names[i]) + "_truncated", truncated[i] ? 1 : 0);
    }
  }
  send_cached(kResult, seq, w.take());
}

}  // namespace epagent

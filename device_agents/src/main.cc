// SPDX-License-Identifier: Apache-2.0
// edgepack-agent: serves the protocol on stdin/stdout or on a serial tty (PROTOCOL.md).
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "agent.h"
#include "tty.h"

namespace {

struct termios g_saved;
int g_tty_fd = -1;

void restore_tty() {
  if (g_tty_fd >= 0) tcsetattr(g_tty_fd, TCSADRAIN, &g_saved);
  g_tty_fd = -1;
}

void on_signal(int sig) {
  restore_tty();
  signal(sig, SIG_DFL);
  raise(sig);
}

// Raw 8N1: no echo, no signals, no CR/LF translation, no XON/XOFF. Saves the old settings.
bool make_raw(int fd, long baud) {
  if (tcgetattr(fd, &g_saved) != 0) return false;
  g_tty_fd = fd;
  struct termios t = g_saved;
  cfmakeraw(&t);
  t.c_iflag &= ~tcflag_t(IXON | IXOFF | IXANY);
  t.c_cflag |= CLOCAL | CREAD;
  t.c_cc[VMIN] = 1;
  t.c_cc[VTIME] = 0;
  if (baud > 0) {
    cfsetispeed(&t, epagent::baud_constant(baud));
    cfsetospeed(&t, epagent::baud_constant(baud));
  }
  atexit(restore_tty);
  signal(SIGTERM, on_signal);
  signal(SIGHUP, on_signal);
  return tcsetattr(fd, TCSANOW, &t) == 0;
}

int usage() {
  std::fprintf(stderr,
               "usage: edgepack-agent --root DIR [--tty DEVICE --baud N] [--max-upload BYTES]\n"
               "       edgepack-agent --version\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  epagent::Config cfg;
  std::string root, tty;
  long baud = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (a == "--version") {
      std::printf("edgepack-agent %s\n", epagent::kAgentVersion);
      return 0;
    } else if (a == "--root" && (v = next())) {
      root = v;
    } else if (a == "--tty" && (v = next())) {
      tty = v;
    } else if (a == "--baud" && (v = next())) {
      baud = std::atol(v);
      if (epagent::baud_constant(baud) == B0) {
        std::fprintf(stderr, "edgepack-agent: unsupported --baud %s\n", v);
        return 2;
      }
    } else if (a == "--max-upload" && (v = next())) {
      char* end = nullptr;
      cfg.max_upload = std::strtoll(v, &end, 10);
      if (*v == '\0' || *end != '\0' || cfg.max_upload <= 0 ||
          cfg.max_upload > epagent::kMaxChunks * epagent::kMaxChunk) {
        std::fprintf(stderr, "edgepack-agent: --max-upload %s: want 1..%lld bytes\n", v,
                     static_cast<long long>(epagent::kMaxChunks * epagent::kMaxChunk));
        return 2;
      }
    } else {
      return usage();
    }
  }
  if (root.empty()) return usage();
  ::mkdir(root.c_str(), 0755);
  char real[PATH_MAX];
  if (::realpath(root.c_str(), real) == nullptr) {
    std::fprintf(stderr, "edgepack-agent: --root %s: %s\n", root.c_str(), std::strerror(errno));
    return 2;
  }
  cfg.root = real;
  signal(SIGPIPE, SIG_IGN);  // a closed channel shows up as a write error instead
  // Orphans of a RUN (a `setsid` grandchild, a double fork) are reparented to the agent, so
  // the watchdog finds and ends them (run.cc).
  ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  int in_fd = 0, out_fd = 1;
  if (!tty.empty()) {
    in_fd = out_fd = ::open(tty.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (in_fd < 0) {
      std::fprintf(stderr, "edgepack-agent: --tty %s: %s\n", tty.c_str(), std::strerror(errno));
      return 2;
    }
  }
  if (isatty(in_fd)) {
    cfg.tty = true;
    cfg.window = 8192;
    if (!make_raw(in_fd, baud)) {
      std::fprintf(stderr, "edgepack-agent: cannot set raw mode: %s\n", std::strerror(errno));
      return 2;
    }
    std::string ready = std::string("EDGEPACK-AGENT ") + epagent::kAgentVersion + " READY\n";
    ready.push_back('\0');
    epagent::write_all(out_fd, reinterpret_cast<const uint8_t*>(ready.data()), ready.size());
  }
  epagent::Agent agent(cfg, in_fd, out_fd);
  int rc = agent.serve();
  agent.baud_restore_delay();
  restore_tty();
  return rc;
}

// SPDX-License-Identifier: Apache-2.0
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "facts.h"
#include "sha256.h"

namespace epagent {

bool write_all(int fd, const uint8_t* data, size_t len) {
  while (len > 0) {
    ssize_t n = ::write(fd, data, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += n;
    len -= size_t(n);
  }
  return true;
}

bool fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

bool valid_sha256(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

bool has_nul(const std::string& s) {
  return s.find('\0') != std::string::npos;
}

Agent::Agent(Config cfg, int in_fd, int out_fd)
    : cfg_(std::move(cfg)), in_fd_(in_fd), out_fd_(out_fd) {
  uint8_t r[8] = {};
  if (!random_bytes(r, sizeof r)) {  // no /dev/urandom: the clock still tells sessions apart
    struct timespec ts {};
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t v = (uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec)) ^ uint64_t(getpid());
    std::memcpy(r, &v, sizeof v);
  }
  char buf[17];
  for (size_t i = 0; i < sizeof r; ++i) std::snprintf(buf + 2 * i, 3, "%02x", r[i]);
  session_ = buf;
  if (!sha256_file("/proc/self/exe", &self_sha256_)) self_sha256_ = "";
}

Agent::~Agent() {
  close_upload();
}

void Agent::send(uint8_t type, uint32_t seq, std::vector<uint8_t> payload) {
  if (payload.size() > size_t(kMaxPayload)) {  // never a frame the host must drop
    type = kError;
    payload = FieldWriter()
                  .add_str("code", "too_large")
                  .add_str("message", "reply of " + std::to_string(payload.size()) +
                                          " bytes exceeds the frame limit")
                  .take();
  }
  Frame f;
  f.type = type;
  f.seq = seq;
  f.payload = std::move(payload);
  std::vector<uint8_t> wire = encode_frame(f);
  if (!write_all(out_fd_, wire.data(), wire.size())) done_ = true;  // the host is gone
}

void Agent::send_error(uint32_t seq, const std::string& code, const std::string& message) {
  // Messages may quote what the host sent (a path, a hash): at most 1 KiB of it comes back.
  const size_t kMaxMessage = 1024;
  std::string shown =
      message.size() > kMaxMessage ? message.substr(0, kMaxMessage) + "..." : message;
  send(kError, seq, FieldWriter().add_str("code", code).add_str("message", shown).take());
}

void Agent::send_cached(uint8_t type, uint32_t seq, std::vector<uint8_t> payload) {
  cached_seq_ = seq;
  cached_type_ = type;
  cached_payload_ = payload;
  send(type, seq, std::move(payload));
}

void Agent::on_hello(uint32_t seq, const Fields& in) {
  int64_t proto = 0;
  if (!in.get_int("protocol", &proto) || proto != kProtocolVersion) {
    send_error(seq, "bad_request",
               "protocol version " + std::to_string(proto) + " not supported (agent speaks 1)");
    return;
  }
  FieldWriter w;
  w.add_int("protocol", kProtocolVersion)
      .add_str("agent_version", kAgentVersion)
      .add_str("agent_sha256", self_sha256_);
  for (const char* c :
       {"put", "install", "run", "get", "stream", "stdin", "keygen", "deflate", "hash", "recipe"})
    w.add_str("capabilities", c);
  if (cfg_.tty) {
    w.add_str("capabilities", "tty");
    w.add_str("capabilities", "baud");
  }
  w.add_str("boot_id", read_boot_id())
      .add_str("session", session_)
      .add_int("max_payload", int64_t(kMaxPayload))
      .add_int("max_chunk", int64_t(kMaxChunk))
      .add_int("max_upload", cfg_.max_upload)
      .add_int("window", cfg_.window)
      .add_str("facts", device_facts_json(cfg_.root));
  send(kHello, seq, w.take());
}

void Agent::handle(const Frame& f) {
  Fields in;
  if (!in.parse(f.payload)) {
    send_error(f.seq, "bad_request", "malformed payload fields");
    return;
  }
  if (f.seq != 0 && f.seq == cached_seq_ &&
      (f.type == kRun || f.type == kInstall || f.type == kKeygen || f.type == kPutEnd)) {
    send(cached_type_, cached_seq_, cached_payload_);  // a retransmitted request
    return;
  }
  switch (f.type) {
    case kHello:
      on_hello(f.seq, in);
      break;
    case kPutBegin:
      on_put_begin(f.seq, in);
      break;
    case kPutChunk:
      on_put_chunk(f.seq, in);
      break;
    case kPutEnd:
      on_put_end(f.seq, in);
      break;
    case kInstall:
      on_install(f.seq, in);
      break;
    case kRun:
      on_run(f.seq, in);
      break;
    case kGet:
      on_get(f.seq, in);
      break;
    case kKeygen:
      on_keygen(f.seq, in);
      break;
    case kBaud:
      on_baud(f.seq, in);
      break;
    case kHash:
      on_hash(f.seq, in);
      break;
    case kPutRecipe:
      on_put_recipe(f.seq, in);
      break;
    case kPing:
      send(kPong, f.seq, {});
      break;
    case kBye:
      send(kBye, f.seq, {});
      done_ = true;
      break;
    default: {
      char buf[64];
      std::snprintf(buf, sizeof buf, "unknown message type 0x%02x", f.type);
      send_error(f.seq, "unknown_type", buf);
    }
  }
}

void Agent::report_dropped(const FrameDecoder::Result& r) {
  if (r.event == FrameDecoder::Event::kOversize) {
    send_error(0, "frame_too_large",
               "frame of " + std::to_string(r.candidate_len) + " bytes exceeds the limit");
  } else if (r.candidate_len >= 4) {
    send_error(0, "bad_frame", r.why);
  }
}

int Agent::serve() {
  std::vector<uint8_t> buf(65536);
  std::vector<FrameDecoder::Result> results;
  while (!done_) {
    int wait = baud_wait_ms();
    if (wait >= 0) {  // a BAUD deadline runs: wait for input at most until then
      struct pollfd p = {in_fd_, POLLIN, 0};
      int rc = ::poll(&p, 1, wait);
      if (rc < 0 && errno == EINTR) continue;
      if (rc == 0) {
        baud_check();
        continue;
      }
    }
    ssize_t n = ::read(in_fd_, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // end of input: the SSH channel or the line closed
    baud_bytes();
    results.clear();
    dec_.feed(buf.data(), size_t(n), &results);
    for (auto& r : results) {
      if (done_) break;
      if (r.event == FrameDecoder::Event::kFrame) {
        baud_frame();
        handle(r.frame);
      } else {
        report_dropped(r);
      }
    }
  }
  return 0;
}

void Agent::serve_during_run(uint32_t run_seq) {
  uint8_t buf[4096];
  ssize_t n = ::read(in_fd_, buf, sizeof buf);
  if (n < 0) {
    if (errno == EINTR || errno == EAGAIN) return;
    host_gone_ = true;
    return;
  }
  if (n == 0) {
    host_gone_ = true;  // the channel closed: the RUN is ended and the agent exits
    done_ = true;
    return;
  }
  baud_bytes();
  std::vector<FrameDecoder::Result> results;
  dec_.feed(buf, size_t(n), &results);
  for (auto& r : results) {
    if (r.event == FrameDecoder::Event::kFrame) baud_frame();
    if (r.event != FrameDecoder::Event::kFrame) {
      report_dropped(r);
    } else if (r.frame.type == kPing) {
      send(kPong, r.frame.seq, {});
    } else if (r.frame.type == kRun && r.frame.seq == run_seq) {
      // A retransmitted RUN (serial): it is running; its RESULT follows.
    } else {
      send_error(r.frame.seq, "busy",
                 "a RUN (seq " + std::to_string(run_seq) +
                     ") is in progress; only PING is answered until it ends");
    }
  }
}

}  // namespace epagent

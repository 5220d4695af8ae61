// SPDX-License-Identifier: Apache-2.0
// The agent: serves protocol requests from one byte stream (PROTOCOL.md).
#pragma once

#include <termios.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "frame.h"
#include "message.h"

namespace epagent {

constexpr const char* kAgentVersion = "0.1.0";

struct Config {
  std::string root;  // install root, absolute and resolved
  int64_t max_upload = int64_t(2) << 30;
  int64_t window = 262144;  // announced in HELLO; 8 KiB on a tty
  bool tty = false;
};

// An upload in progress (PROTOCOL.md section 7).
struct Upload {
  std::string sha256;
  int64_t size = 0;
  int64_t chunk = 0;
  int64_t nchunks = 0;
  std::vector<bool> have;  // at most kMaxChunks entries, whatever size the host announces
  int fd = -1;             // the .partial file
  int journal = -1;        // the .chunks list
};

// The line rate BAUD set (PROTOCOL.md section 8d).
struct BaudState {
  bool switched = false;        // the tty runs at a rate BAUD set
  bool confirmed = false;       // a valid frame arrived at that rate
  int64_t switched_at_ms = 0;   // CLOCK_MONOTONIC
  int64_t noise_since_ms = -1;  // first bytes since the last valid frame (in probation)
  struct termios before {};     // the settings to go back to
};

class Agent {
 public:
  Agent(Config cfg, int in_fd, int out_fd);
  ~Agent();
  // Serves until BYE or end of input. Returns the process exit code.
  int serve();
  // Before BYE restores the console's settings: lets a host that switched rates follow.
  void baud_restore_delay() const;

 private:
  void handle(const Frame& f);
  void send(uint8_t type, uint32_t seq, std::vector<uint8_t> payload);
  void send_error(uint32_t seq, const std::string& code, const std::string& message);
  void send_cached(uint8_t type, uint32_t seq, std::vector<uint8_t> payload);

  void on_hello(uint32_t seq, const Fields& in);
  void on_put_begin(uint32_t seq, const Fields& in);
  void on_put_recipe(uint32_t seq, const Fields& in);
  void on_hash(uint32_t seq, const Fields& in);
  void on_put_chunk(uint32_t seq, const Fields& in);
  void on_put_end(uint32_t seq, const Fields& in);
  void on_install(uint32_t seq, const Fields& in);
  void on_get(uint32_t seq, const Fields& in);
  void on_run(uint32_t seq, const Fields& in);
  void on_keygen(uint32_t seq, const Fields& in);
  void on_baud(uint32_t seq, const Fields& in);
  // The BAUD fallback: a valid frame confirms the new rate; without one within
  // kBaudConfirmMs (baud_wait_ms: how long until baud_check must run, -1: no deadline), or
  // when only bytes that form no frame arrive for that long in the probation time, the tty
  // goes back to the old rate.
  void baud_frame();
  void baud_bytes();
  int baud_wait_ms() const;
  void baud_check();
  void revert_baud();
  // While a RUN is in progress: reads what the host sent, answers PING, refuses the rest
  // (`busy`); end of input sets host_gone_.
  void serve_during_run(uint32_t run_seq);
  void report_dropped(const FrameDecoder::Result& r);
  // Deletes abandoned uploads: older than kPartialMaxAgeS, then the oldest ones while all of
  // them together (plus `incoming` bytes) exceed max_upload. Keeps the upload of `keep`.
  void expire_partials(const std::string& keep, int64_t incoming);

  // Resolves a root-relative path; on refusal sends ERROR and returns false.
  bool resolve(uint32_t seq, const std::string& rel, std::string* abs_out);
  std::string cas_dir() const;
  std::string keys_dir() const;
  void close_upload();
  // PUT_BEGIN's checks and set-up (`what` names the request in messages): true when the
  // upload is open and its HAVE is still to be sent; false when a reply went out (an ERROR,
  // or HAVE complete=1 for a file the store holds).
  bool open_upload(uint32_t seq, const Fields& in, const char* what);
  // HAVE for the open upload, with its bitmap.
  void send_have(uint32_t seq);
  // Records chunk `index` of the open upload as stored (bitmap and journal).
  void mark_chunk(int64_t index);

  Config cfg_;
  int in_fd_, out_fd_;
  bool done_ = false;
  bool host_gone_ = false;  // end of input while a RUN was in progress
  FrameDecoder dec_;
  std::string session_;
  std::string self_sha256_;
  Upload up_;
  BaudState baud_;
  // Final replies of non-idempotent requests, by seq, so a retransmitted request is
  // answered again instead of executed twice (PROTOCOL.md section 3).
  uint32_t cached_seq_ = 0;
  uint8_t cached_type_ = 0;
  std::vector<uint8_t> cached_payload_;
};

bool write_all(int fd, const uint8_t* data, size_t len);
// `n` bytes from /dev/urandom; false when it cannot be read.
bool random_bytes(uint8_t* out, size_t n);
bool fsync_dir(const std::string& dir);
bool valid_sha256(const std::string& s);
// True when `s` holds a NUL byte (a C string would end there: refused in every name).
bool has_nul(const std::string& s);
// Creates `dir` (its parent must exist) or narrows an existing one to mode 0700.
bool make_private_dir(const std::string& dir);

}  // namespace epagent

// SPDX-License-Identifier: Apache-2.0
// BAUD: a faster line after the handshake, with a fallback to the old rate (PROTOCOL.md 8d).
#include <time.h>
#include <unistd.h>

#include <string>

#include "agent.h"
#include "tty.h"

namespace epagent {
namespace {

int64_t now_ms() {
  struct timespec ts {};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace

void Agent::on_baud(uint32_t seq, const Fields& in) {
  int64_t baud = 0;
  if (!in.get_int("baud", &baud)) {
    send_error(seq, "bad_request", "BAUD needs an int field 'baud'");
    return;
  }
  if (!cfg_.tty) {
    send_error(seq, "bad_request", "BAUD on a link that is not a tty");
    return;
  }
  if (baud_constant(long(baud)) == B0) {
    send_error(seq, "bad_request", "line rate " + std::to_string(baud) + " not supported");
    return;
  }
  // Try the rate while the line is idle (the host waits for our answer): a tty that does
  // not take it is refused now, at the old rate, and the host may ask for a lower one.
  tcdrain(out_fd_);
  struct termios before {
  }, after{};
  if (!set_tty_baud(in_fd_, long(baud), &before, &after)) {
    send_error(seq, "bad_request", "this tty does not take " + std::to_string(baud) + " baud");
    return;
  }
  tcsetattr(in_fd_, TCSANOW, &before);
  send(kOk, seq, FieldWriter().add_int("baud", baud).take());
  // The OK leaves at the old rate: wait until it is on the wire, then a little more (a
  // USB-serial adapter on the host still holds the last bytes), then switch.
  tcdrain(out_fd_);
  ::usleep(useconds_t(kBaudSettleMs) * 1000);
  tcsetattr(in_fd_, TCSANOW, &after);
  if (!baud_.switched) baud_.before = before;  // a second BAUD keeps the first fallback
  baud_.switched = true;
  baud_.confirmed = false;
  baud_.switched_at_ms = now_ms();
  baud_.noise_since_ms = -1;
}

void Agent::baud_frame() {
  if (!baud_.switched) return;
  baud_.confirmed = true;
  baud_.noise_since_ms = -1;
}

void Agent::baud_bytes() {
  if (!baud_.switched || !baud_.confirmed) return;
  int64_t now = now_ms();
  if (now - baud_.switched_at_ms > kBaudProbationMs) return;
  if (baud_.noise_since_ms < 0) {
    baud_.noise_since_ms = now;
  } else if (now - baud_.noise_since_ms >= kBaudConfirmMs) {
    // Bytes keep coming and none of them forms a frame: the host went back to the old rate
    // (it lost our answers at the new one).
    revert_baud();
  }
}

int Agent::baud_wait_ms() const {
  if (!baud_.switched || baud_.confirmed) return -1;
  int64_t left = baud_.switched_at_ms + kBaudConfirmMs - now_ms();
  return left <= 0 ? 0 : int(left);
}

void Agent::baud_check() {
  // No valid frame at the new rate: the host never switched.
  if (baud_wait_ms() == 0) revert_baud();
}

void Agent::revert_baud() {
  tcsetattr(in_fd_, TCSANOW, &baud_.before);  // back to the rate the host can reach us at
  baud_ = BaudState();
}

void Agent::baud_restore_delay() const {
  // Before the tty goes back to the console's rate (BYE), give the host time to switch too,
  // so the shell's next output is readable.
  if (baud_.switched) {
    tcdrain(out_fd_);
    ::usleep(useconds_t(4 * kBaudSettleMs) * 1000);
  }
}

}  // namespace epagent

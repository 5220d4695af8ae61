// SPDX-License-Identifier: Apache-2.0
#include "tty.h"

#include <cstddef>

namespace epagent {
namespace {

struct Rate {
  long baud;
  speed_t speed;
};

// The rates of spec/boards.py SERIAL_BAUDS that this C library names.
const Rate kRates[] = {
    {9600, B9600},       {19200, B19200},     {38400, B38400},   {57600, B57600},
    {115200, B115200},   {230400, B230400},   {460800, B460800}, {921600, B921600},
    {1500000, B1500000}, {3000000, B3000000},
};

}  // namespace

speed_t baud_constant(long baud) {
  for (const Rate& r : kRates)
    if (r.baud == baud) return r.speed;
  return B0;
}

long baud_of(speed_t speed) {
  for (const Rate& r : kRates)
    if (r.speed == speed) return r.baud;
  return 0;
}

bool set_tty_baud(int fd, long baud, struct termios* before, struct termios* after) {
  speed_t speed = baud_constant(baud);
  if (speed == B0 || tcgetattr(fd, before) != 0) return false;
  struct termios t = *before;
  bool ok = cfsetispeed(&t, speed) == 0 && cfsetospeed(&t, speed) == 0 &&
            tcsetattr(fd, TCSANOW, &t) == 0 && tcgetattr(fd, after) == 0 &&
            cfgetospeed(after) == speed;
  if (!ok) tcsetattr(fd, TCSANOW, before);
  return ok;
}

}  // namespace epagent

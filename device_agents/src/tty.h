// SPDX-License-Identifier: Apache-2.0
// The serial line under the agent: raw mode and line rates (PROTOCOL.md sections 8d and 9).
#pragma once

#include <termios.h>

namespace epagent {

// The termios constant of a line rate, or B0 when the agent does not support it.
speed_t baud_constant(long baud);
// The line rate of a termios speed constant, or 0 when unknown.
long baud_of(speed_t speed);
// Saves the current settings of `fd` in *before, then sets both speeds to `baud` (supported,
// see baud_constant) and reads them back into *after. When the tty refuses, or keeps another
// rate (qemu-user, for one, knows no rate above 460800), the old settings are restored and
// the result is false.
bool set_tty_baud(int fd, long baud, struct termios* before, struct termios* after);

}  // namespace epagent

# SPDX-License-Identifier: Apache-2.0
"""Driving a board's serial console shell: log in, run commands, read exit codes.

The shell is used only to bootstrap the agent; this is the labgrid ShellDriver recipe made
robust for a noisy line:

- Login is a state machine over what the console shows (``login:``, ``Password:``, a shell
  prompt, ``Login incorrect``); silence is answered with a newline poke.
- Once at a prompt, echo is switched off (``stty -echo``), XON/XOFF and the EOF character are
  disabled (a bit flip must not turn a byte into ^S or ^D, which would stop output or end
  the shell), and PS1 is set to a random, unique prompt.
- Every command runs as ``echo B<tok>:<n>; <cmd>; echo E<tok>:<n>:$?``, with the markers
  split by quotes so an echoed command line never matches. Only the marker pair decides
  where output starts and ends and what the exit status was.
- A missing end marker within the timeout triggers a resync: ^C (drops any half-read line,
  quote or here-document), a newline, and a fresh marker echo. A console that stays silent
  through every resync is reported dead.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from edgepack.errors import DeviceError
from edgepack.spec.boards import DEFAULT_CONSOLE, Console

# VT100/ANSI escapes that busybox line editing and bash emit: CSI sequences (cursor queries
# such as ESC [6n, colours, bracketed paste), OSC titles, and two-byte escapes.
_ESCAPES = re.compile(rb"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[@-Z\\-_]")

# Echo off, no XON/XOFF, no EOF or suspend character: a bit flip must not turn a byte into
# ^S (output stops) or ^D (the shell exits). Separate calls: an old stty may lack one.
_QUIET_TTY = ("stty icanon -echo 2>/dev/null; stty -ixon 2>/dev/null; "
              "stty eof undef 2>/dev/null; stty susp undef 2>/dev/null")

# Applets the bootstrap can use, with a probe command and the output that proves it works.
APPLET_PROBES: dict[str, tuple[str, str]] = {
    "base64": ("echo aGk= | base64 -d", "hi"),
    "sha256sum": ("printf hi | sha256sum",
                  "8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4  -"),
    "md5sum": ("printf hi | md5sum", "49f68a5c8493ec2c0bf489821c21fc3b  -"),
    "od": ("printf hi | od -An -tx1", "68 69"),
    "printf": ("printf '\\150\\151'", "hi"),
    "dd": ("printf hi | dd bs=1 count=1 2>/dev/null", "h"),
    "stty": ("stty -g >/dev/null && echo ok", "ok"),
    "head": ("printf 'a\\nb\\n' | head -n 1", "a"),
    # gzip of "hi": lets the bootstrap upload the agent compressed (serial.SerialTransport).
    "gunzip": ("printf '\\037\\213\\010\\000\\000\\000\\000\\000\\002\\003\\313\\310\\004"
               "\\000\\254\\052\\223\\330\\002\\000\\000\\000' | gunzip -c", "hi"),
}


class ConsolePort(Protocol):
    """What the driver needs from a serial port (pyserial's ``Serial`` fits)."""

    timeout: float | None

    @property
    def in_waiting(self) -> int: ...

    def read(self, size: int = 1) -> bytes: ...
    def write(self, data: bytes) -> int | None: ...
    def flush(self) -> None: ...


@dataclass(frozen=True)
class ShellOutput:
    output: str  # stdout and stderr together, lines joined with "\n"
    exit_code: int


def marker_token() -> str:
    # Upper-case letters only, without R, I and D, so a token never spells ERROR, FAIL, DEBUG
    # or INFO that log scanners look for (labgrid's rule).
    alphabet = "ABCEFGHJKLMNOPQSTUVWXYZ"
    return "".join(secrets.choice(alphabet) for _ in range(10))


def clean(data: bytes) -> bytes:
    """Console bytes without escape sequences and carriage returns."""
    return _ESCAPES.sub(b"", data).replace(b"\r", b"")


@dataclass
class ShellStats:
    commands: int = 0
    resyncs: int = 0
    bytes_written: int = 0
    bytes_read: int = 0


@dataclass
class ShellDriver:
    """A logged-in shell on a console port. Call ``start()`` first."""

    port: ConsolePort
    user: str | None = None
    password: str | None = None
    # The board file's console: the login, password and shell prompts it shows, and what it
    # says when a login fails (regular expressions matched against the end of the output).
    console: Console = DEFAULT_CONSOLE
    login_timeout: float = 60.0
    command_timeout: float = 10.0
    dead_timeout: float = 20.0  # silence through resyncs before the console is called dead
    log_path: Path | None = None
    disabled_applets: frozenset[str] = frozenset()  # pretend these are missing (tests, quirks)
    token: str = field(default_factory=marker_token)
    stats: ShellStats = field(default_factory=ShellStats)
    _buf: bytearray = field(default_factory=bytearray)
    _seq: int = 0
    _applets: dict[str, bool] | None = None

    # -- raw console I/O -------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        try:
            self.port.write(data)
            self.port.flush()
        except OSError as exc:
            raise DeviceError(f"the serial console went away: {exc}") from None
        self.stats.bytes_written += len(data)
        self._log(b">> ", data)

    def _fill(self, timeout: float) -> bool:
        """Read what arrives within ``timeout``; True if anything came."""
        wait = round(max(0.01, min(timeout, 0.2)), 2)
        if self.port.timeout != wait:
            self.port.timeout = wait
        # One byte with a timeout, then whatever else is already there: read(n) would wait
        # for all n bytes or the whole timeout.
        try:
            got = self.port.read(1)
            if got and self.port.in_waiting:
                got += self.port.read(self.port.in_waiting)
        except OSError as exc:  # pyserial's SerialException is an OSError
            raise DeviceError(f"the serial console went away: {exc}") from None
        if got:
            self._buf += got
            self.stats.bytes_read += len(got)
            self._log(b"<< ", got)
        return bool(got)

    def _log(self, prefix: bytes, data: bytes) -> None:
        if self.log_path is not None:
            with open(self.log_path, "ab") as f:
                f.write(prefix + data + b"\n")

    def expect(self, patterns: Iterable[re.Pattern[bytes]], timeout: float,
               ) -> tuple[int, re.Match[bytes]] | None:
        """Wait until one pattern matches the cleaned buffer; consume up to the match."""
        pats = list(patterns)
        deadline = time.monotonic() + timeout
        while True:
            text = clean(bytes(self._buf))
            best: tuple[int, re.Match[bytes]] | None = None
            for i, pat in enumerate(pats):
                m = pat.search(text)
                if m and (best is None or m.start() < best[1].start()):
                    best = (i, m)
            if best is not None:
                # Keep the unmatched rest: cleaning is idempotent on it.
                self._buf = bytearray(text[best[1].end():])
                return best
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._fill(left)

    def take_pending(self) -> bytes:
        """What arrived after the last match and is not consumed yet (e.g. the first bytes of a
        program started in the foreground); the buffer is empty afterwards."""
        data = bytes(self._buf)
        self._buf.clear()
        return data

    def unread(self, data: bytes) -> None:
        """Put cleaned console text back in front of what is still to be matched."""
        self._buf[:0] = data

    # -- login and set-up ------------------------------------------------------------------

    def start(self) -> None:
        """Log in if asked, then set up a quiet, marker-friendly shell."""
        self._login()
        self._setup()

    def _login(self) -> None:
        con = self.console
        login_re, password_re = re.compile(con.login_prompt.encode()), \
            re.compile(con.password_prompt.encode())
        failed_re, prompt_re = re.compile(con.login_failed.encode()), \
            re.compile(con.prompt.encode())
        deadline = time.monotonic() + self.login_timeout
        sent_user = False  # the user name went out for the login prompt now showing
        tried_password = False
        failures = 0
        quiet = 0.0
        while time.monotonic() < deadline:
            # Anchored patterns must see the end of the output, so first let it settle.
            got = self._fill(0.3)
            while self._fill(0.15):
                got = True
            text = clean(bytes(self._buf))
            self._buf.clear()
            if failed_re.search(text) and tried_password:
                failures += 1
                tried_password = False
                if failures >= 3:
                    raise DeviceError(f"login as {self.user!r} refused by the console "
                                      "(wrong user or password)")
            if login_re.search(text):
                if not self.user:
                    raise DeviceError("the console asks for a login but no user was given",
                                      hint="set console.login in the board file, or add "
                                      "?user=NAME to the serial:// URI")
                self.write(self.user.encode() + b"\n")
                sent_user = True
            elif password_re.search(text):
                if sent_user:
                    self.write((self.password or "").encode() + b"\n")
                    tried_password = True
                else:
                    # A stray newline was taken as the user name: fail this round quickly
                    # rather than send the password to the wrong question.
                    self.write(b"\n")
                sent_user = False
            elif prompt_re.search(text):
                return
            elif not got:
                # Poke a silent console (as a person presses Enter), but only after a real
                # pause: every extra newline is read as an answer by a login prompt.
                quiet += 0.45
                if quiet >= 2.0:
                    self.write(b"\n")
                    quiet = 0.0
                continue
            quiet = 0.0
        raise DeviceError(f"no shell prompt on the console within {self.login_timeout:.0f}s")

    def _setup(self) -> None:
        prompt = f"EPP{self.token}# "
        split = f"EPP''{self.token}# "
        # Each setting on its own so one an old busybox lacks does not stop the rest.
        self.write(f"{_QUIET_TTY}; PS2=''; PS1='{split}'\n".encode())
        if self.expect([re.compile(re.escape(prompt.encode()))], 10.0) is None:
            raise DeviceError("the console shell did not take the new prompt (PS1)")
        # The shell sits at its new prompt: no ^C for this first sync. A SIGINT delivered to
        # a freshly started busybox sh under qemu-user now and then aborts qemu (SIGABRT),
        # which took the whole virtual console down in CI.
        self.resync(interrupt=False)

    # -- commands --------------------------------------------------------------------------

    def resync(self, interrupt: bool = True) -> None:
        """Bring the shell back to a clean prompt: ^C, newline, then a fresh marker. With
        ``interrupt=False`` the first try sends no ^C (the shell is known to be idle);
        a retry always does."""
        deadline = time.monotonic() + self.dead_timeout
        while time.monotonic() < deadline:
            self._seq += 1
            tag = f"S{self.token}:{self._seq}"
            if interrupt:
                # ^Q first: if noise spoiled `stty -ixon` and then sent a ^S, output is
                # stopped.
                self.write(b"\x11\x03")
                time.sleep(0.1)  # let the shell take SIGINT before it reads the next line
            interrupt = True
            # A command killed by ^C may have left the tty in non-canonical mode, and noise
            # may have spoiled the set-up line: the settings are repeated every time.
            self.write(f"\n{_QUIET_TTY}; echo '{tag[:4]}''{tag[4:]}'\n".encode())
            if self.expect([re.compile(re.escape(tag.encode()) + rb"\n")], 3.0) is not None:
                return
            self.stats.resyncs += 1
        raise DeviceError(f"the serial console is not answering (no reply for "
                          f"{self.dead_timeout:.0f}s)")

    def send_command(self, line: str) -> int:
        """Send one marker-wrapped command line; return its sequence number."""
        self._seq += 1
        n = self._seq
        t = self.token
        self.stats.commands += 1
        self.write(f"echo 'B{t[:3]}''{t[3:]}:{n}'; {line}; echo \"E{t[:3]}\"'{t[3:]}:{n}:'$?\n"
                   .encode())
        return n

    def wait_result(self, n: int, timeout: float) -> ShellOutput | None:
        """The output and exit code of command ``n``, or None if its markers did not arrive."""
        t = re.escape(self.token.encode())
        num = str(n).encode()
        # The end marker, or (when noise ate it) the prompt that follows this command's
        # begin marker: then the command is over but its status unknown, so no long wait.
        pat = re.compile(rb"B" + t + b":" + num + rb"\n(.*?)(?:E" + t + b":" + num
                         + rb":(\d+)\n|EPP" + t + b"# )", re.DOTALL)
        got = self.expect([pat], timeout)
        if got is None:
            return None
        m = got[1]
        if m.group(2) is None:
            return None
        # Consume this command's own prompt too, so it is never taken for a later one's.
        prompt = re.compile(rb"^EPP" + t + b"# ")
        if not prompt.match(clean(bytes(self._buf))):
            self._fill(0.05)
        text = clean(bytes(self._buf))
        pm = prompt.match(text)
        if pm:
            self._buf = bytearray(text[pm.end():])
        out = m.group(1).decode("utf-8", "replace")
        return ShellOutput(output=out[:-1] if out.endswith("\n") else out,
                             exit_code=int(m.group(2)))

    def run(self, line: str, timeout: float | None = None, retries: int = 2) -> ShellOutput:
        """Run one shell command line. Retried after a resync when its markers get lost, so
        it must be safe to run twice."""
        for _ in range(retries + 1):
            n = self.send_command(line)
            res = self.wait_result(n, timeout or self.command_timeout)
            if res is not None:
                return res
            self.resync()
        raise DeviceError(f"command got no complete reply on the console: {line[:60]!r}")

    def run_check(self, line: str, timeout: float | None = None) -> str:
        res = self.run(line, timeout)
        if res.exit_code != 0:
            raise DeviceError(f"command failed on the board (exit {res.exit_code}): "
                              f"{line[:60]!r}: {res.output[-200:]}")
        return res.output

    # -- what the board has ----------------------------------------------------------------

    def applets(self) -> dict[str, bool]:
        """Which bootstrap applets work on this shell (probed once)."""
        if self._applets is None:
            found: dict[str, bool] = {}
            for name, (probe, expected) in APPLET_PROBES.items():
                if name in self.disabled_applets:
                    found[name] = False
                    continue
                for _ in range(3):  # noise can spoil a probe's answer; a real lack repeats
                    res = self.run(f"({probe}) 2>/dev/null", timeout=5.0)
                    found[name] = res.exit_code == 0 and res.output.strip() == expected
                    if found[name]:
                        break
            self._applets = found
        return dict(self._applets)

    def has(self, applet: str) -> bool:
        return self.applets().get(applet, False)

# SPDX-License-Identifier: Apache-2.0
"""The serial transport: a board's console (``serial:///dev/ttyX[?baud=N&user=U&root=DIR]``).

The console shell is only the bootstrap (``serial_shell``): log in, detect applets, upload the
static agent in verified chunks (``serial_upload``), then start it in the foreground of the
shell. The agent switches the tty to raw mode itself (PROTOCOL.md section 9) and frames flow
through ``AgentClient`` with retransmission on, so frames hit by noise are dropped by their
CRC and sent again. After ``BYE`` the agent restores the tty and the shell comes back.

Console settings come from the board file's ``console:`` (``TransportOptions.console``: login
user, login/password/shell prompts, baud, line settings, flow control, login timeout); the
URI's ``user=`` and ``baud=`` override the board file; without a board file
``spec.boards.DEFAULT_CONSOLE`` applies (root, 115200, 8N1). The password is never in a URI or
a board file (both end up in logs): it comes from ``$EDGEPACK_SERIAL_PASSWORD``.

Baud rate: the console shell runs at the board's login rate (``console.baud``). Once the
agent answers, its frames switch to ``console.max_baud`` (``BAUD``, PROTOCOL.md section 8d):
the agent answers at the old rate and switches its tty, this side follows and confirms with a
``PING``; when no ``PONG`` comes back both sides go back to the login rate and the deploy goes
on there, with one warning line. ``?fast_baud=N`` in the URI overrides ``max_baud``,
``?fast_baud=0`` keeps the line at the login rate. After ``BYE`` both sides are back at the
login rate, where the shell is.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import re
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from edgepack.device.client import AgentClient, AgentError, ConnectionLost
from edgepack.device.serial_shell import ShellDriver
from edgepack.device.serial_upload import Method, ShellUploader
from edgepack.device.targets import Target, query_of, root_of
from edgepack.device.transport import CommandResult, Link, TransportOptions
from edgepack.errors import DeviceError, UsageError
from edgepack.spec.boards import DEFAULT_CONSOLE, SERIAL_BAUDS, Console

PASSWORD_ENV = "EDGEPACK_SERIAL_PASSWORD"


def parse_uri(uri: str, flag: str = "--target") -> Target:
    """``serial:///dev/ttyX[?baud=N&user=U&root=DIR&fast_baud=N]``; baud, user and fast_baud
    left out are the board file's (``console_settings``)."""
    parts = urlsplit(uri)
    query = query_of(uri, {"baud", "user", "root", "fast_baud"}, flag)
    root = root_of(query, uri, flag)
    device = parts.path
    if parts.netloc or not device.startswith("/"):
        raise UsageError(f"{flag} {uri}: use serial:///dev/ttyX (three slashes, absolute path)")
    baud_text = query.get("baud")
    if baud_text is not None and (not baud_text.isdigit() or int(baud_text) not in SERIAL_BAUDS):
        raise UsageError(f"{flag} {uri}: baud must be one of "
                         f"{', '.join(str(b) for b in SERIAL_BAUDS)}")
    fast_baud_of(uri, flag)  # checked here, read again by console_settings
    return Target("serial", uri, device=device, baud=int(baud_text) if baud_text else None,
                  user=query.get("user", ""), root=root)


def fast_baud_of(uri: str, flag: str = "--target") -> int | None:
    """The URI's ``fast_baud=``: a rate of ``SERIAL_BAUDS``, 0 (no switch) or None (absent)."""
    text = query_of(uri, {"baud", "user", "root", "fast_baud"}, flag).get("fast_baud")
    if text is None:
        return None
    if not text.isdigit() or (int(text) != 0 and int(text) not in SERIAL_BAUDS):
        raise UsageError(f"{flag} {uri}: fast_baud must be 0 (stay at the console rate) or "
                         f"one of {', '.join(str(b) for b in SERIAL_BAUDS)}")
    return int(text)


@dataclass(frozen=True)
class ConsoleSettings:
    """The console as this transport uses it: the board file's, with the URI's overrides."""

    console: Console  # prompts, line settings, flow control, login timeout
    baud: int
    user: str | None  # None: the console asks for no login
    fast_baud: int | None = None  # the agent's frames switch to this rate; None: they do not


def console_settings(target: Target, console: Console | None) -> ConsoleSettings:
    """Precedence: the URI (``baud=``, ``user=``, ``fast_baud=``), then the board file's
    ``console:``, then ``DEFAULT_CONSOLE``."""
    con = console or DEFAULT_CONSOLE
    baud = target.baud or con.baud
    fast = fast_baud_of(target.uri)
    if fast is None:
        fast = con.max_baud
    return ConsoleSettings(con, baud, target.user or con.login,
                           fast if fast and fast > baud else None)


def open_port(device: str, baud: int, console: Console = DEFAULT_CONSOLE,
              timeout: float = 0.2) -> Any:
    """Open a tty with pyserial: the console's line settings (8N1 and no flow control unless
    the board file says otherwise: debug UARTs rarely wire RTS/CTS)."""
    import serial  # pyserial

    try:
        return serial.Serial(device, baud, timeout=timeout, bytesize=console.bytesize,
                             parity=console.parity, stopbits=console.stopbits,
                             xonxoff=console.flow == "xonxoff", rtscts=console.flow == "rtscts",
                             exclusive=True)
    except (serial.SerialException, OSError) as exc:
        raise DeviceError(f"cannot open serial port {device}: {exc}",
                          hint="check the cable/adapter and that no other program holds it"
                          ) from None


def _local_tty(port: Any) -> bool:
    """Whether this side can set the line rate: a tty of this machine (a ser2net TCP port's
    rate is ser2net's own)."""
    fd = getattr(port, "fd", None)
    return isinstance(fd, int) and os.isatty(fd)


class SerialAgentStream:
    """The ``ByteStream`` to an agent running in the foreground of the console shell.

    The shell prints the command's end marker when the agent exits; seeing it means the
    stream is over (``ConnectionLost``), so a missing or crashing agent is noticed at once
    instead of after a HELLO timeout.
    """

    def __init__(self, transport: SerialTransport, seq: int, pending: bytes) -> None:
        self.transport = transport
        self.port = transport.port
        t = re.escape(transport.shell.token.encode())
        self._end = re.compile(rb"E" + t + b":" + str(seq).encode() + rb":(\d+)")
        self._pending = pending
        self._tail = b""
        self.exit_code: int | None = None
        self.closed = False
        self.baud = transport.settings.baud  # the rate this side of the line runs at

    def set_baud(self, baud: int) -> None:
        """Switch this side of the line (after the agent's ``BAUD`` answer)."""
        self.port.flush()
        self.port.baudrate = baud
        self.baud = baud

    def write(self, data: bytes) -> None:
        if self.exit_code is not None:
            raise ConnectionLost(f"the agent on {self.transport.target.uri} has exited "
                                 f"(status {self.exit_code})")
        self.port.write(data)
        self.port.flush()

    def read(self, max_bytes: int, timeout: float) -> bytes:
        if self.exit_code is not None:
            raise ConnectionLost(f"the agent on {self.transport.target.uri} exited "
                                 f"(status {self.exit_code})")
        if self._pending:
            data, self._pending = self._pending[:max_bytes], self._pending[max_bytes:]
        else:
            self.port.timeout = max(0.01, timeout)
            data = self.port.read(1)
            if data and self.port.in_waiting:
                data += self.port.read(min(max_bytes - 1, self.port.in_waiting))
        if data:
            window = (self._tail + data).replace(b"\r", b"")
            m = self._end.search(window)
            if m:
                self.exit_code = int(m.group(1))
            self._tail = window[-64:]
        return data

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.baud != self.transport.settings.baud:
            # After BYE the agent restores the console's rate (it waits for us to follow).
            self.set_baud(self.transport.settings.baud)
        if self.exit_code is None:
            # Still running: ask it to leave (BYE restores the tty), then the shell is back.
            from edgepack.device.protocol import Message, MsgType, encode_frame

            bye = encode_frame(Message.build(MsgType.BYE, 0xFFFFFFF0))
            deadline = time.monotonic() + 5.0
            while self.exit_code is None and time.monotonic() < deadline:
                self.port.write(bye)
                self.port.flush()
                try:
                    while self.read(65536, 0.5):
                        if self.exit_code is not None:
                            break
                except ConnectionLost:
                    break
        self.transport._agent_done()


class SerialTransport:
    """``Transport`` over a console: shell for commands and uploads, agent for frames."""

    def __init__(self, target: Target, options: TransportOptions | None = None, *,
                 password: str | None = None, port: Any = None,
                 method: Method = "auto", log_path: Path | None = None,
                 disabled_applets: frozenset[str] = frozenset(),
                 login_timeout: float | None = None, dead_timeout: float = 20.0) -> None:
        self.target = target
        self.settings = console_settings(target, options.console if options else None)
        con = self.settings.console
        self.port = port if port is not None else open_port(target.device, self.settings.baud,
                                                            con)
        self.shell = ShellDriver(self.port, user=self.settings.user, password=password,
                                 console=con,
                                 login_timeout=login_timeout or con.login_timeout_s,
                                 dead_timeout=dead_timeout,
                                 log_path=log_path, disabled_applets=disabled_applets)
        self.method: Method = method
        # What AgentClient should use on this link: retransmission on, chunks of which two
        # (with framing) fit the agent's 8 KiB tty window (0.96 of the line rate measured by
        # benchmarks/transfer_serial.py, against 0.88 with 1 KiB chunks), and DEFLATE-compressed
        # chunks when the agent decodes them.
        self.link = Link(chunk_size=3968, retransmit=True, compress=True)
        self._started = False
        self._agent_running = False
        self.last_upload: Any = None

    def _ready_shell(self) -> ShellDriver:
        if self._agent_running:
            raise DeviceError("the console is held by the agent; close its stream first")
        if not self._started:
            self.shell.start()
            self._started = True
        return self.shell

    def _agent_done(self) -> None:
        self._agent_running = False
        if self._started:
            self.shell.resync()  # swallow the agent's leftovers and the prompt

    def run_command(self, command: str, timeout: float = 60.0) -> CommandResult:
        res = self._ready_shell().run(command, timeout=timeout, retries=0)
        # The console merges stderr into stdout (one tty); it all comes back as stdout.
        return CommandResult(res.exit_code, res.output.encode(), b"")

    def upload(self, local: Path, remote: str, mode: int = 0o755) -> None:
        """Upload through the shell; gzip-compressed when the board has ``gunzip`` and it
        pays (a static agent shrinks to about 40%), then unpacked and checked on the board."""
        shell = self._ready_shell()
        uploader = ShellUploader(shell, method=self.method, baud=self.settings.baud,
                                 bits_per_byte=self.settings.console.bits_per_byte)
        data = local.read_bytes()
        label = f"upload {local.name} over the console"
        packed = gzip.compress(data, 9, mtime=0) if shell.has("gunzip") else data
        if len(packed) >= 0.9 * len(data):
            self.last_upload = uploader.upload(data, remote, mode=mode, label=label)
            return
        gz, unpacked = shlex.quote(remote + ".ep-gz"), shlex.quote(remote + ".ep-unpacked")
        self.last_upload = uploader.upload(packed, remote + ".ep-gz", mode=0o600,
                                           label=f"{label} (gzip)")
        want = hashlib.sha256(data).hexdigest()
        hasher = "sha256sum" if shell.has("sha256sum") else None
        if hasher is None:
            raise DeviceError("the board's shell has no sha256sum: the upload cannot be "
                              "verified end to end")
        # Safe to run twice (the shell driver retries a line whose markers got lost); the
        # verdict is on the destination itself, computed on the board, so noise on the line
        # can hide it but not fake it.
        t, dest = shell.token, shlex.quote(remote)
        res = shell.run(f'if [ -f {gz} ]; then gunzip -c {gz} >{unpacked} && '
                        f'[ "$({hasher} <{unpacked})" = "{want}  -" ] && '
                        f"chmod {mode:o} {unpacked} && mv -f {unpacked} {dest}; "
                        f"rm -f {gz} {unpacked}; fi; "
                        f'[ "$({hasher} <{dest})" = "{want}  -" ] && echo U"{t}":good',
                        timeout=120.0)
        if f"U{t}:good" not in res.output.splitlines():
            raise DeviceError(f"upload of {remote}: unpacking on the board failed or the "
                              f"result does not match its SHA-256: {res.output[-200:]}")

    def open_stream(self, command: str) -> SerialAgentStream:
        """Start ``command`` (an agent) in the foreground of the console shell.

        A leading ``exec`` is dropped: the agent runs as a child so the shell (and the
        console) is still there after ``BYE``.
        """
        shell = self._ready_shell()
        command = re.sub(r"^\s*exec\s+", "", command)
        n = shell.send_command(command)
        begin = re.compile(rb"B" + re.escape(shell.token.encode()) + b":" + str(n).encode()
                           + rb"\n")
        if shell.expect([begin], 10.0) is None:
            raise DeviceError(f"the console on {self.target.uri} did not start {command!r}")
        pending = shell.take_pending()
        self._agent_running = True
        return SerialAgentStream(self, n, pending)

    def tune_link(self, client: AgentClient) -> None:
        """Called once the agent answers: switch its frames to the fast rate, if any. A rate
        the agent's tty does not take is refused before anything switches; the next lower
        standard rate is tried then. A rate it takes but the line does not carry (no answer
        after the switch) ends the attempt at the login rate. Either way one warning line."""
        fast, old = self.settings.fast_baud, self.settings.baud
        stream = client.stream
        info = client.hello_info
        if (fast is None or not isinstance(stream, SerialAgentStream) or info is None
                or "baud" not in info.capabilities or not _local_tty(self.port)):
            return
        where = f"edgepack: warning: {self.target.uri}:"
        for rate in sorted((b for b in SERIAL_BAUDS if old < b <= fast), reverse=True):
            try:
                switched = client.change_baud(rate, old, stream.set_baud)
            except AgentError:  # the tty refused this rate; nothing switched
                continue
            if not switched:
                print(f"{where} no answer from the agent at {rate} baud; the line stays at "
                      f"{old} baud (lower the board file's console max_baud, or add "
                      "?fast_baud=0 to the target)", file=sys.stderr)
            elif rate != fast:
                print(f"{where} the agent's tty does not take {fast} baud; frames run at "
                      f"{rate} baud", file=sys.stderr)
            return
        print(f"{where} the agent's tty takes no rate above {old} baud; the line stays there",
              file=sys.stderr)

    def client(self, stream: SerialAgentStream, timeout: float = 60.0,
               chunk_size: int | None = None) -> AgentClient:
        """An ``AgentClient`` set up for a serial line (retransmission on)."""
        return AgentClient(stream, timeout=timeout, retransmit=True,
                           chunk_size=chunk_size or self.link.chunk_size, device=self.target.uri)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.port.close()


def connect(target: Target, options: TransportOptions) -> SerialTransport:
    """The registry's entry point. A console password never goes in the URI (URIs end up
    in logs and shell history); it comes from ``$EDGEPACK_SERIAL_PASSWORD`` when needed."""
    return SerialTransport(target, options, password=os.environ.get(PASSWORD_ENV) or None)

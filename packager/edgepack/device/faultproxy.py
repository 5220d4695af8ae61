# SPDX-License-Identifier: Apache-2.0
"""A pty proxy that makes a clean pty behave like a noisy, slow serial line.

``FaultProxy`` opens a new pty (the host end, linked to a path of your choice) and shuttles
bytes between it and an existing device end (e.g. a virtual console's tty) in a background
thread, with ``os.openpty`` and ``select`` only. On the way, each direction independently

- flips bits at ``bit_flip_rate`` per bit (default 1e-4, a bad cable or a noisy level shifter),
- drops bytes at ``drop_rate`` per byte (UART overruns),
- delays data by ``delay_s`` plus a uniform ``jitter_s`` (USB-serial latency timers), keeping
  byte order as a real line does,
- and paces bytes at the line rate (10 bits per byte for 8N1): the rate the device side set
  on its own tty (``device_pty``: its termios speed, read again every time the proxy paces,
  so a program that switches its line rate is followed and a test can tell that it did), or
  a fixed ``baud`` (a UART that keeps its rate whatever the device asks).

With ``match_rates``, bytes that cross while the host's rate (the termios speed the host set
on its end, e.g. pyserial's ``baudrate``) differs from the device's arrive as garbage, as on
a real UART: a receiver faster than the sender reads each byte as a framing error (0x00 in
raw mode), a slower one reads fewer bytes of random value.

Everything is seeded, and ``counters`` says what was done, so a failing run can be replayed.
Faults are chosen by geometric skips (the distance to the next flipped bit or dropped byte),
which is exact for independent events and costs nothing per clean byte.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import random
import select
import termios
import threading
import time
import tty
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

BITS_PER_BYTE_8N1 = 10  # start bit + 8 data bits + stop bit

# termios speed constant -> bits per second, for the rates this platform names.
_SPEEDS: dict[int, int] = {
    getattr(termios, f"B{rate}"): rate
    for rate in (50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600, 19200,
                 38400, 57600, 115200, 230400, 460800, 500000, 576000, 921600, 1000000,
                 1152000, 1500000, 2000000, 2500000, 3000000, 3500000, 4000000)
    if hasattr(termios, f"B{rate}")
}


def tty_baud(fd: int) -> int | None:
    """The output rate set on the tty ``fd`` (on a pty master: its slave's), or None."""
    try:
        return _SPEEDS.get(termios.tcgetattr(fd)[5])
    except termios.error:
        return None


Rate = Callable[[], "int | None"]


@dataclass(frozen=True)
class Faults:
    """What the line does to bytes, per direction."""

    bit_flip_rate: float = 1e-4  # per bit
    drop_rate: float = 0.0  # per byte
    delay_s: float = 0.0  # added to every byte
    jitter_s: float = 0.0  # uniform extra delay in [0, jitter_s), order kept

    @classmethod
    def clean(cls) -> Faults:
        return cls(bit_flip_rate=0.0)


@dataclass
class DirectionCounters:
    bytes_in: int = 0
    bytes_out: int = 0
    bits_flipped: int = 0
    bytes_dropped: int = 0
    bytes_garbled: int = 0  # crossed while the two ends ran at different rates
    max_delay_s: float = 0.0
    baud: int = 0  # the rate bytes were last paced at (0: not paced)


@dataclass
class ProxyCounters:
    to_device: DirectionCounters = field(default_factory=DirectionCounters)
    to_host: DirectionCounters = field(default_factory=DirectionCounters)

    def as_dict(self) -> dict[str, dict[str, float]]:
        return {"to_device": vars(self.to_device).copy(), "to_host": vars(self.to_host).copy()}


class LineRateLimiter:
    """Paces writes at ``baud`` (8N1: 10 bits a byte): says how many bytes may go now."""

    def __init__(self, baud: int, bits_per_byte: int = BITS_PER_BYTE_8N1) -> None:
        self.bits_per_byte = bits_per_byte
        self.set_baud(baud)
        self._line_free_at = 0.0  # when the last byte granted has left the wire

    def set_baud(self, baud: int) -> None:
        """Pace the next bytes at ``baud`` (the line's rate changed)."""
        if baud <= 0:
            raise ValueError("baud must be positive")
        self.baud = baud
        self.bytes_per_s = baud / self.bits_per_byte

    def grant(self, want: int, now: float) -> int:
        """Bytes that may be written at ``now`` (at least one once the line is free)."""
        if self._line_free_at < now:
            self._line_free_at = now
        # Allow up to 2 ms of bytes ahead so pacing is smooth without a syscall per byte.
        slack = now + 0.002 - self._line_free_at
        n = min(want, max(0, int(slack * self.bytes_per_s)))
        if n == 0 and self._line_free_at <= now + 1e-9:
            n = min(want, 1)
        self._line_free_at += n / self.bytes_per_s
        return n

    def wait_s(self, now: float) -> float:
        """How long until at least one byte may go."""
        return max(0.0, self._line_free_at - 0.002 + 1.0 / self.bytes_per_s - now)


class _Skipper:
    """Distance to the next event of a Bernoulli process with probability ``p`` per unit."""

    def __init__(self, rng: random.Random, p: float) -> None:
        self.rng = rng
        self.p = p
        self.left = self._draw()

    def _draw(self) -> float:
        if self.p <= 0.0:
            return math.inf
        if self.p >= 1.0:
            return 0
        return int(math.log(1.0 - self.rng.random()) / math.log(1.0 - self.p))

    def events_in(self, units: int) -> list[int]:
        """Offsets (0-based) of the events among the next ``units`` units."""
        hits: list[int] = []
        pos = 0
        while self.left < units - pos:
            pos += int(self.left)
            hits.append(pos)
            pos += 1
            self.left = self._draw()
        self.left -= units - pos
        return hits


class _Direction:
    """One way through the proxy: mutate what was read, hold it until due, pace it out."""

    def __init__(self, faults: Faults, rng: random.Random, counters: DirectionCounters, *,
                 line: Rate, sender: Rate, receiver: Rate | None) -> None:
        self.faults = faults
        self.rng = rng
        self.flips = _Skipper(rng, faults.bit_flip_rate)
        self.drops = _Skipper(rng, faults.drop_rate)
        self.line = line  # the rate to pace at now (None: not paced)
        self.sender = sender
        self.receiver = receiver  # None: rates are not compared
        self.limiter: LineRateLimiter | None = None
        self.counters = counters
        self.queue: deque[tuple[float, bytearray]] = deque()  # (due time, bytes), in order
        self._last_due = 0.0

    def _garble(self, buf: bytearray) -> bytearray:
        """What a receiver at another rate than the sender reads of ``buf``."""
        if self.receiver is None:
            return buf
        send, recv = self.sender(), self.receiver()
        if send is None or recv is None or send == recv:
            return buf
        self.counters.bytes_garbled += len(buf)
        if recv > send:  # every byte ends in a framing error
            return bytearray(len(buf))
        keep = max(1, len(buf) * recv // send)
        return bytearray(self.rng.randbytes(keep))

    def take(self, data: bytes, now: float) -> None:
        self.counters.bytes_in += len(data)
        buf = self._garble(bytearray(data))
        drop = set(self.drops.events_in(len(buf)))
        if drop:
            buf = bytearray(b for i, b in enumerate(buf) if i not in drop)
            self.counters.bytes_dropped += len(drop)
        for bit in self.flips.events_in(len(buf) * 8):
            buf[bit // 8] ^= 1 << (bit % 8)
            self.counters.bits_flipped += 1
        if not buf:
            return
        delay = self.faults.delay_s
        if self.faults.jitter_s > 0:
            delay += self.rng.random() * self.faults.jitter_s
        due = max(now + delay, self._last_due)  # a line never reorders bytes
        self._last_due = due
        self.counters.max_delay_s = max(self.counters.max_delay_s, due - now)
        self.queue.append((due, buf))

    def pending(self) -> int:
        return sum(len(b) for _, b in self.queue)

    def _pace(self) -> None:
        """Follow the line's rate as it is now."""
        baud = self.line()
        if baud is None:
            self.limiter = None
        elif self.limiter is None:
            self.limiter = LineRateLimiter(baud)
        elif baud != self.limiter.baud:
            self.limiter.set_baud(baud)
        self.counters.baud = baud or 0

    def next_wake(self, now: float) -> float | None:
        """Seconds until something can be written, or None if nothing is queued."""
        if not self.queue:
            return None
        self._pace()
        due = self.queue[0][0] - now
        if self.limiter is not None:
            due = max(due, self.limiter.wait_s(now))
        return max(0.0, due)

    def ready(self, now: float) -> bytes:
        """Bytes that may be written now (removed from the queue)."""
        self._pace()
        out = bytearray()
        while self.queue and self.queue[0][0] <= now:
            _, buf = self.queue[0]
            n = len(buf)
            if self.limiter is not None:
                n = self.limiter.grant(len(buf), now)
                if n == 0:
                    break
            out += buf[:n]
            if n == len(buf):
                self.queue.popleft()
            else:
                del buf[:n]
                break
        return bytes(out)


def _set_raw(fd: int) -> None:
    tty.setraw(fd)


class FaultProxy:
    """``with FaultProxy(device_tty, host_link, faults=..., device_pty=...) as p:`` then open
    ``host_link`` with pyserial. ``faults_to_device``/``faults_to_host`` override ``faults``
    per direction.

    Pacing: ``device_pty`` names the tty the device's programs use (a virtual console's
    ``device_pty``); the line runs at the speed set on it, read each time bytes are paced.
    Without it, ``baud`` is a fixed line rate; with neither, bytes are not paced.
    ``match_rates``: garble what crosses while the host's rate differs from the device's.
    """

    def __init__(
        self,
        device_tty: str | Path,
        host_link: str | Path,
        *,
        faults: Faults | None = None,
        faults_to_device: Faults | None = None,
        faults_to_host: Faults | None = None,
        baud: int | None = None,
        device_pty: str | Path | None = None,
        match_rates: bool = False,
        seed: int = 0,
    ) -> None:
        base = faults if faults is not None else Faults()
        self.device_tty = str(device_tty)
        self.host_link = Path(host_link)
        self.baud = baud
        self.device_pty = str(device_pty) if device_pty is not None else None
        self.seed = seed
        self.counters = ProxyCounters()
        self._speed_fd = -1  # the device's own tty, for its termios speed
        self._master = -1
        rng_down = random.Random(f"{seed}/to_device")
        rng_up = random.Random(f"{seed}/to_host")
        device_rate, host_rate = self._device_rate, self._host_rate
        self._down = _Direction(faults_to_device or base, rng_down, self.counters.to_device,
                                line=device_rate, sender=host_rate,
                                receiver=device_rate if match_rates else None)
        self._up = _Direction(faults_to_host or base, rng_up, self.counters.to_host,
                              line=device_rate, sender=device_rate,
                              receiver=host_rate if match_rates else None)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._fds: list[int] = []
        self.error: BaseException | None = None

    def _device_rate(self) -> int | None:
        """The device side's line rate now."""
        if self._speed_fd >= 0:
            return tty_baud(self._speed_fd)
        return self.baud

    def _host_rate(self) -> int | None:
        """The rate the host set on its end (termios of the pty's slave, read on the master)."""
        return tty_baud(self._master) if self._master >= 0 else None

    def start(self) -> FaultProxy:
        dev = os.open(self.device_tty, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        master, slave = os.openpty()
        self._fds = [dev, master, slave]
        if self.device_pty is not None:
            self._speed_fd = os.open(self.device_pty, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
            self._fds.append(self._speed_fd)
        for fd in (dev, slave):
            _set_raw(fd)
        os.set_blocking(master, False)
        # Keeping our own handle on the host end open means the master never reads EIO
        # while the host closes and reopens the port.
        if self.host_link.is_symlink() or self.host_link.exists():
            self.host_link.unlink()
        self.host_link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.ttyname(slave), self.host_link)
        self._dev, self._master = dev, master
        self._thread = threading.Thread(target=self._loop, name="fault-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = []
        self._speed_fd = self._master = -1
        if self.host_link.is_symlink():
            self.host_link.unlink()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _loop(self) -> None:
        try:
            self._pump()
        except BaseException as exc:  # surfaced to the owner through ``error``
            self.error = exc

    def _pump(self) -> None:
        dev, master = self._dev, self._master
        # (read from, write to, direction)
        routes = ((master, dev, self._down), (dev, master, self._up))
        while not self._stop.is_set():
            now = time.monotonic()
            waits = [w for w in (d.next_wake(now) for _, _, d in routes) if w is not None]
            timeout = min([0.05, *waits])
            # Stop reading a side whose queue is long: the writer then blocks, as it would
            # behind a slow line, instead of the proxy buffering without bound.
            readers = [src for src, _, d in routes if d.pending() < 65536]
            ready, _, _ = select.select(readers, [], [], timeout)
            now = time.monotonic()
            for src, _, direction in routes:
                if src in ready:
                    data = _read(src)
                    if data:
                        direction.take(data, now)
            for _, dst, direction in routes:
                out = direction.ready(now)
                if out:
                    direction.counters.bytes_out += len(out)
                    _write_all(dst, out, self._stop)


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except BlockingIOError:
        return b""
    except OSError as exc:
        if exc.errno == errno.EIO:  # the other side of this pty is closed right now
            time.sleep(0.01)
            return b""
        raise


def _write_all(fd: int, data: bytes, stop: threading.Event) -> None:
    view = memoryview(data)
    while view and not stop.is_set():
        try:
            n = os.write(fd, view)
            view = view[n:]
        except BlockingIOError:
            select.select([], [fd], [], 0.05)
        except OSError as exc:
            if exc.errno == errno.EIO:
                return  # nobody on that side: a real line loses these bytes too
            raise

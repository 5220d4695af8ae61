# SPDX-License-Identifier: Apache-2.0
"""The fault-injecting pty proxy: what it reports is what it did, seeded and replayable."""

from __future__ import annotations

import os
import random
import select
import threading
import tty
from pathlib import Path

from edgepack.device.faultproxy import FaultProxy, Faults, LineRateLimiter


def _pty_pair() -> tuple[int, str]:
    """A pty whose slave stands in for a device's tty; returns (master fd, slave path)."""
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    os.close(slave)  # the proxy opens it by path, like a console's host end
    return master, path


def _write_all(fd: int, data: bytes) -> None:
    for i in range(0, len(data), 4096):
        os.write(fd, data[i:i + 4096])


def _read_until_quiet(fd: int, quiet: float = 1.0) -> bytes:
    """Everything that arrives until the line has been silent for ``quiet`` seconds."""
    out = bytearray()
    while True:
        r, _, _ = select.select([fd], [], [], quiet)
        if not r:
            return bytes(out)
        out += os.read(fd, 65536)


def _through_proxy(faults: Faults, data: bytes, tmp: Path, seed: int,
                   baud: int | None = None) -> tuple[bytes, FaultProxy]:
    dev_master, dev_path = _pty_pair()
    proxy = FaultProxy(dev_path, tmp / "host", faults_to_device=faults,
                       faults_to_host=Faults.clean(), baud=baud, seed=seed)
    with proxy:
        host = os.open(tmp / "host", os.O_RDWR | os.O_NOCTTY)
        tty.setraw(host)
        # Write from a thread: the pty buffers are small, and the proxy only moves on as
        # the device side is read.
        writer = threading.Thread(target=_write_all, args=(host, data))
        writer.start()
        try:
            got = _read_until_quiet(dev_master)
            writer.join(timeout=30)
        finally:
            os.close(host)
            os.close(dev_master)
    return got, proxy


def test_bit_flips_are_counted_exactly(tmp_path: Path) -> None:
    data = random.Random(1).randbytes(200_000)
    got, proxy = _through_proxy(Faults(bit_flip_rate=1e-3), data, tmp_path, seed=4)
    assert len(got) == len(data)
    flipped = sum(bin(a ^ b).count("1") for a, b in zip(data, got, strict=True))
    c = proxy.counters.to_device
    assert flipped == c.bits_flipped
    # 1.6 Mbit at 1e-3: about 1600 flips; far outside that means the rate is wrong.
    assert 1200 < c.bits_flipped < 2000
    assert proxy.error is None


def test_same_seed_same_faults(tmp_path: Path) -> None:
    data = bytes(50_000)
    a, _ = _through_proxy(Faults(bit_flip_rate=1e-3), data, tmp_path / "a", seed=9)
    b, _ = _through_proxy(Faults(bit_flip_rate=1e-3), data, tmp_path / "b", seed=9)
    c, _ = _through_proxy(Faults(bit_flip_rate=1e-3), data, tmp_path / "c", seed=10)
    assert a == b != c


def test_drops_and_delays_keep_order(tmp_path: Path) -> None:
    data = bytes(range(256)) * 200
    faults = Faults(bit_flip_rate=0.0, drop_rate=1e-3, delay_s=0.002, jitter_s=0.01)
    got, proxy = _through_proxy(faults, data, tmp_path, seed=2)
    c = proxy.counters.to_device
    assert c.bytes_dropped > 0 and len(got) == len(data) - c.bytes_dropped
    # What arrives is the input with some bytes missing, in order (a subsequence).
    it = iter(data)
    assert all(any(b == x for x in it) for b in got)
    assert c.max_delay_s >= 0.002


def test_clean_paced_line_is_lossless(tmp_path: Path) -> None:
    data = random.Random(3).randbytes(20_000)
    got, proxy = _through_proxy(Faults.clean(), data, tmp_path, seed=0, baud=921_600)
    assert got == data
    assert proxy.counters.to_device.bytes_out == len(data)


def test_line_rate_limiter_grants_the_line_rate() -> None:
    # Pure arithmetic on a virtual clock: 115200 baud 8N1 is 11,520 bytes a second.
    lim = LineRateLimiter(115_200)
    now, sent = 0.0, 0
    while now < 10.0:
        sent += lim.grant(1 << 20, now)
        now += 0.001
    assert abs(sent - 115_200) <= 30

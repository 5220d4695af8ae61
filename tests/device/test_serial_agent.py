# SPDX-License-Identifier: Apache-2.0
"""The agent bootstrapped over a serial console (aarch64 busybox under qemu behind a pty),
then frames over the raw tty: HELLO, PUT with resume, RUN — also through a noisy line."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgepack.device.client import AgentClient
from edgepack.device.faultproxy import FaultProxy, Faults
from edgepack.device.protocol import MsgType
from edgepack.device.serial import SerialTransport
from edgepack.device.serial_virtual import (
    SerialConsole,
    fetch_busybox,
    start_serial_console,
    stop_serial_console,
)
from edgepack.device.targets import parse_target
from edgepack.device.transport import TransportOptions, connect, start_agent


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SerialConsole]:
    c = start_serial_console("aarch64", tmp_path_factory.mktemp("serial-agent"))
    yield c
    stop_serial_console(c)


def _transport(tty: str) -> SerialTransport:
    # Through the transport registry, as `edgepack bench --target serial://...` does.
    t = connect(parse_target(f"serial://{tty}?baud=115200"), TransportOptions())
    assert isinstance(t, SerialTransport)
    return t


def _start(t: SerialTransport, console: SerialConsole, agent: Path) -> tuple[AgentClient, bool]:
    client, uploaded = start_agent(t, console.device_root, agent, retransmit=True)
    client.chunk_size = 1024
    return client, uploaded


def test_agent_bootstrapped_over_console(console: SerialConsole, aarch64_agent: Path) -> None:
    t = _transport(console.tty)
    try:
        client, uploaded = _start(t, console, aarch64_agent)
        assert uploaded  # the board had no agent: it went up through the shell
        assert t.last_upload is not None and t.last_upload.method == "base64"
        # The board has gunzip: the agent went up gzip-compressed and was unpacked there.
        assert t.last_upload.path.endswith(".ep-gz")
        assert t.last_upload.size < 0.6 * aarch64_agent.stat().st_size
        info = client.hello_info
        assert info is not None
        assert info.facts["machine"] == "aarch64"
        assert info.agent_sha256 == hashlib.sha256(aarch64_agent.read_bytes()).hexdigest()

        # PUT with resume: a first connection stores some chunks, then the rest follows.
        data = random.Random(5).randbytes(40_000)
        digest = hashlib.sha256(data).hexdigest()
        have = client.request(MsgType.PUT_BEGIN, sha256=digest, size=len(data), chunk=1024)
        assert have.get_int("complete") == 0
        for i in range(10):
            client.request(MsgType.PUT_CHUNK, sha256=digest, index=i,
                           data=data[i * 1024:(i + 1) * 1024])
        put = client.put_bytes(data)
        assert put.chunks_total == 40 and put.chunks_sent == 30

        # RUN: the board's own busybox, installed through frames, reports back.
        busybox = fetch_busybox("aarch64")
        client.deploy_file(busybox, "bin/busybox", 0o755)
        res = client.run(["bin/busybox", "uname", "-m"])
        assert res.ok and res.stdout.strip() == b"aarch64"
        client.install(digest, "data/blob.bin", 0o644)

        # BYE gives the console back to the shell.
        client.bye()
        client.stream.close()
        out = t.run_command("sha256sum data/blob.bin")
        assert out.exit_code == 0 and out.stdout.split()[0].decode() == digest
    finally:
        t.close()


def test_frames_through_noisy_line(console: SerialConsole, aarch64_agent: Path,
                                   tmp_path: Path) -> None:
    # The agent is on the board from the test above (or goes up now through a clean line).
    t = _transport(console.tty)
    try:
        client, _ = _start(t, console, aarch64_agent)
        client.bye()
        client.stream.close()
    finally:
        t.close()

    faults = Faults(bit_flip_rate=1e-4, drop_rate=1e-5, delay_s=0.001, jitter_s=0.004)
    with FaultProxy(console.tty, tmp_path / "ttyNOISY", faults=faults, seed=21) as proxy:
        t = _transport(str(tmp_path / "ttyNOISY"))
        try:
            client, uploaded = _start(t, console, aarch64_agent)
            assert not uploaded
            data = random.Random(9).randbytes(24_000)
            put = client.put_bytes(data)
            assert put.sha256 == hashlib.sha256(data).hexdigest()
            client.install(put.sha256, "data/noisy.bin", 0o644)
            res = client.run(["bin/busybox", "sha256sum", "data/noisy.bin"])
            assert res.ok and res.stdout.split()[0].decode() == put.sha256
            stats = client.stats
            client.bye()
            client.stream.close()
        finally:
            t.close()
    assert proxy.error is None
    assert proxy.counters.to_device.bits_flipped > 0
    # Frames hit by noise were dropped by their CRC and sent again.
    assert stats.retransmits + stats.frames_dropped + stats.bad_frames_reported > 0
    assert (Path(console.device_root) / "data/noisy.bin").read_bytes() == data

# SPDX-License-Identifier: Apache-2.0
"""BAUD over a real pty: the aarch64 agent (under qemu, in the foreground of a busybox console
shell) switches its own tty, and the line-rate pacer follows the speed the agent set there, so
the measured bytes/s tell which rate the line really ran at. Both ends must agree on the rate
(``match_rates``): what crosses at mismatched rates arrives as garbage, as on a UART."""

from __future__ import annotations

import os
import random
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgepack.device.client import AgentClient
from edgepack.device.faultproxy import FaultProxy, Faults, tty_baud
from edgepack.device.protocol import MsgType
from edgepack.device.serial import SerialAgentStream, SerialTransport, console_settings
from edgepack.device.serial_virtual import (
    SerialConsole,
    start_serial_console,
    stop_serial_console,
)
from edgepack.device.targets import parse_target
from edgepack.device.transport import TransportOptions, agent_path, connect, start_agent
from edgepack.errors import UsageError
from edgepack.spec.boards import load_board

SLOW, FAST = 115_200, 921_600
QEMU_MAX = 460_800  # the highest rate qemu-user 7.2 translates


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory,
            aarch64_agent: Path) -> Iterator[SerialConsole]:
    c = start_serial_console("aarch64", tmp_path_factory.mktemp("serial-baud"), baud=SLOW)
    # The agent is on the board already: these tests are about the line, not the bootstrap
    # (test_serial_agent.py uploads it through the shell).
    dest = Path(agent_path(c.device_root))
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(aarch64_agent, dest)
    yield c
    stop_serial_console(c)


def test_fast_rate_from_the_board_file_and_the_uri() -> None:
    board = load_board("hi3559a").console

    def fast(uri: str) -> int | None:
        return console_settings(parse_target(uri), board).fast_baud

    assert fast("serial:///dev/ttyUSB0") == 921_600  # console.max_baud
    assert fast("serial:///dev/ttyUSB0?fast_baud=460800") == 460_800
    assert fast("serial:///dev/ttyUSB0?fast_baud=0") is None
    assert fast("serial:///dev/ttyUSB0?baud=921600") is None  # already there
    assert console_settings(parse_target("serial:///dev/ttyUSB0"), None).fast_baud is None
    with pytest.raises(UsageError, match=r"^--target serial:///dev/ttyUSB0\?fast_baud=1000: "
                       "fast_baud must be 0 .* or one of 9600, "):
        parse_target("serial:///dev/ttyUSB0?fast_baud=1000")


def _open(link: Path, console: SerialConsole, fast_baud: int) -> tuple[SerialTransport,
                                                                       AgentClient]:
    t = connect(parse_target(f"serial://{link}?baud={SLOW}&fast_baud={fast_baud}"),
                TransportOptions())
    assert isinstance(t, SerialTransport)
    client, uploaded = start_agent(t, console.device_root, None)
    assert not uploaded
    return t, client


def _put_rate(client: AgentClient, size: int) -> float:
    """Payload bytes per second of an incompressible upload."""
    data = random.Random(size).randbytes(size)
    start = time.monotonic()
    put = client.put_bytes(data)
    elapsed = time.monotonic() - start
    assert put.chunks_sent == put.chunks_total > 0
    return put.wire_bytes / elapsed


def _close(t: SerialTransport, client: AgentClient) -> None:
    client.bye()
    client.stream.close()
    # BYE put the console back at its own rate, and the shell answers there.
    out = t.run_command("echo back")
    assert out.exit_code == 0 and b"back" in out.stdout
    t.close()


def test_switch_runs_the_transfer_at_the_new_rate(console: SerialConsole, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    with FaultProxy(console.tty, tmp_path / "tty", faults=Faults.clean(),
                    device_pty=console.device_pty, match_rates=True) as proxy:
        t, client = _open(tmp_path / "tty", console, FAST)
        try:
            stream = client.stream
            assert isinstance(stream, SerialAgentStream)
            rate = stream.baud
            # qemu-user (Debian 12: 7.2) passes no termios rate above 460800 to the pty: the
            # agent refuses 921600 before switching, and the host asks for the next rate.
            assert rate in (FAST, QEMU_MAX)
            assert _speed(console) == rate  # the agent set its own tty
            speed = _put_rate(client, 48_000)
            assert proxy.counters.to_device.baud == rate
        finally:
            _close(t, client)
        assert _speed(console) == SLOW
    assert proxy.error is None
    # Faster than the old rate can carry at all, and never faster than the new one.
    assert SLOW / 10 * 2 < speed <= rate / 10 * 1.02, speed
    err = capsys.readouterr().err.strip().splitlines()
    if rate == FAST:
        assert err == []
    else:
        assert err == [f"edgepack: warning: serial://{tmp_path / 'tty'}?baud={SLOW}&fast_baud="
                       f"{FAST}: the agent's tty does not take {FAST} baud; frames run at "
                       f"{QEMU_MAX} baud"]


def test_a_line_that_keeps_the_old_rate_falls_back(console: SerialConsole, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    # A UART that accepts the new rate and keeps running at the old one: the host hears
    # nothing after the switch, goes back, and the agent, which heard no frame, too.
    with FaultProxy(console.tty, tmp_path / "tty", faults=Faults.clean(), baud=SLOW,
                    match_rates=True) as proxy:
        t, client = _open(tmp_path / "tty", console, FAST)
        try:
            stream = client.stream
            assert isinstance(stream, SerialAgentStream) and stream.baud == SLOW
            rate = _put_rate(client, 12_000)
        finally:
            _close(t, client)
    assert proxy.error is None
    assert proxy.counters.to_device.bytes_garbled > 0
    assert rate <= SLOW / 10 * 1.02, rate
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("edgepack: warning: ") and "115200" in err[0]


def test_agent_reverts_without_a_frame_at_the_new_rate(console: SerialConsole,
                                                       tmp_path: Path) -> None:
    with FaultProxy(console.tty, tmp_path / "tty", faults=Faults.clean(),
                    device_pty=console.device_pty, match_rates=True) as proxy:
        t, client = _open(tmp_path / "tty", console, 0)  # fast_baud=0: no switch
        try:
            stream = client.stream
            assert isinstance(stream, SerialAgentStream) and stream.baud == SLOW
            # The agent switches after its OK; this side stays: silence at the new rate.
            client.request(MsgType.BAUD, baud=QEMU_MAX)
            assert _wait_speed(console, QEMU_MAX, 2.0)
            assert _wait_speed(console, SLOW, 5.0)  # BAUD_CONFIRM_MS later, back
            client.ping()
            # Confirmed at the new rate, then the host loses the PONG and goes back: the
            # agent hears only bytes that form no frame and follows within its probation.
            assert client.change_baud(QEMU_MAX, SLOW, stream.set_baud)
            assert _speed(console) == QEMU_MAX
            stream.set_baud(SLOW)
            assert client._confirm(10.0)
            assert _speed(console) == SLOW
        finally:
            _close(t, client)
    assert proxy.error is None


def _speed(console: SerialConsole) -> int | None:
    fd = os.open(console.device_pty, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        return tty_baud(fd)
    finally:
        os.close(fd)


def _wait_speed(console: SerialConsole, baud: int, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if _speed(console) == baud:
            return True
        time.sleep(0.05)
    return False

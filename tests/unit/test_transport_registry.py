# SPDX-License-Identifier: Apache-2.0
"""A transport is one module: each registers its ``--target`` scheme (its URI parser and its
connect function) in ``device/transport.py``; the serial transport's console settings come from
the board file with the URI's overrides; ``device/fake.py`` (a unit-test aid) drives
``start_agent`` without any device. The transports themselves are proven against real parts in
tests/device."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgepack.device import fake
from edgepack.device.serial import console_settings
from edgepack.device.targets import parse_target
from edgepack.device.transport import (
    TransportOptions,
    agent_path,
    connect,
    schemes,
    start_agent,
)
from edgepack.errors import DeviceError, UsageError
from edgepack.spec.boards import DEFAULT_CONSOLE, Console


def test_each_scheme_is_parsed_by_its_transport() -> None:
    assert set(schemes()) >= {"ssh", "serial", "labgrid", "virtual"}
    ssh = parse_target("ssh://pi@board1.lan:2222?identity=/k/id&root=/data/ep")
    assert (ssh.scheme, ssh.user, ssh.host, ssh.port, ssh.identity, ssh.root) == (
        "ssh", "pi", "board1.lan", 2222, "/k/id", "/data/ep")
    tty = parse_target("serial:///dev/ttyUSB0")
    assert (tty.scheme, tty.device, tty.baud, tty.user, tty.root) == (
        "serial", "/dev/ttyUSB0", None, "", None)  # baud and user: the board file's
    tty = parse_target("serial:///dev/ttyUSB0?baud=921600&user=admin")
    assert (tty.baud, tty.user) == (921600, "admin")
    lab = parse_target("labgrid://bench-3?root=/opt/x")
    assert (lab.scheme, lab.host, lab.root) == ("labgrid", "bench-3", "/opt/x")


@pytest.mark.parametrize(("uri", "message"), [
    ("tcp://board:23", r"unknown scheme; use ssh://user@host\[:port\] or serial:///dev/ttyX"),
    ("board1", "unknown scheme"),
    ("ssh://board1", "missing user"),
    ("ssh://root@board1:99999", "port must be a number"),
    ("ssh://root:pw@board1", "passwords in the URI are not accepted"),
    ("ssh://root@board1?baud=9600", r"unknown parameter\(s\) baud; allowed: identity, root"),
    ("ssh://root@board1?root=rel", "root must be an absolute path"),
    ("serial://dev/ttyUSB0", "three slashes"),
    ("serial:///dev/ttyUSB0?baud=12345", "baud must be one of 9600"),
    ("serial:///dev/ttyUSB0?user=", "give 'user' once, with a value"),
    ("serial:///dev/ttyUSB0?user=a&user=b", "give 'user' once"),
])
def test_uri_mistakes_name_the_flag_and_uri(uri: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as exc:
        parse_target(uri, "--target")
    assert str(exc.value).startswith(f"--target {uri}") or f"{uri!r}" in str(exc.value)


def test_console_settings_precedence() -> None:
    board = Console(baud=921600, login="admin", prompt="> ?$", line="7E1", flow="rtscts")
    # Board file over the defaults...
    s = console_settings(parse_target("serial:///dev/ttyUSB0"), board)
    assert (s.baud, s.user, s.console) == (921600, "admin", board)
    # ... the URI over the board file ...
    s = console_settings(parse_target("serial:///dev/ttyUSB0?baud=115200&user=pi"), board)
    assert (s.baud, s.user, s.console.line) == (115200, "pi", "7E1")
    # ... and the defaults without a board file.
    s = console_settings(parse_target("serial:///dev/ttyUSB0"), None)
    assert (s.baud, s.user, s.console) == (115200, "root", DEFAULT_CONSOLE)
    # A console that asks for no login.
    s = console_settings(parse_target("serial:///dev/ttyUSB0"), Console(login=None))
    assert s.user is None


@pytest.fixture
def fake_scheme() -> Iterator[None]:
    fake.register()
    try:
        yield
    finally:
        fake.unregister()


def test_a_registered_transport_is_reachable_by_its_scheme(fake_scheme: None,
                                                           tmp_path: Path) -> None:
    target = parse_target(f"fake://{tmp_path}")
    assert (target.scheme, target.root) == ("fake", str(tmp_path))
    transport = connect(target, TransportOptions())
    try:
        res = transport.run_command("echo hi; echo err >&2; exit 3")
        assert (res.exit_code, res.stdout, res.stderr) == (3, b"hi\n", b"err\n")
        local = tmp_path / "local.bin"
        local.write_bytes(b"payload")
        transport.upload(local, f"{tmp_path}/dev/x.bin", 0o640)
        assert (tmp_path / "dev" / "x.bin").read_bytes() == b"payload"
        assert stat.S_IMODE((tmp_path / "dev" / "x.bin").stat().st_mode) == 0o640
        with pytest.raises(DeviceError, match="outside the device folder"):
            transport.upload(local, "/etc/x.bin")
    finally:
        transport.close()
    fake.unregister()
    with pytest.raises(UsageError, match="unknown scheme"):
        parse_target(f"fake://{tmp_path}")


def test_start_agent_uploads_a_missing_agent_and_says_when_it_does_not_start(
        fake_scheme: None, tmp_path: Path) -> None:
    root = tmp_path / "device"
    root.mkdir()
    transport = connect(parse_target(f"fake://{root}"), TransportOptions())
    assert isinstance(transport, fake.FakeTransport)
    # Not an agent: it answers no HELLO, so start_agent uploads it, tries again and gives up.
    binary = tmp_path / "edgepack-agent"
    binary.write_text("#!/bin/sh\necho not an agent\n")
    try:
        with pytest.raises(DeviceError, match="does not start on fake://"):
            start_agent(transport, str(root), binary, timeout=2.0)
        path = agent_path(str(root))
        assert [c for c in transport.calls if c[0] == "upload"] == [("upload", path)]
        assert [c[0] for c in transport.calls].count("open_stream") == 2
        assert Path(path).read_bytes() == binary.read_bytes()
        with pytest.raises(DeviceError, match=r"no agent at .* and none to upload"):
            start_agent(transport, str(root / "elsewhere"), None, timeout=2.0)
    finally:
        transport.close()

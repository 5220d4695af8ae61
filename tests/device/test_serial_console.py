# SPDX-License-Identifier: Apache-2.0
"""The serial console bootstrap against a real aarch64 busybox shell behind a pty (qemu-user):
login (with the board file's prompts), applet detection, verified uploads (base64, printf), a
noisy line, a dead one."""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import serial

from edgepack.device.faultproxy import FaultProxy, Faults
from edgepack.device.serial import PASSWORD_ENV, SerialTransport
from edgepack.device.serial_shell import ShellDriver
from edgepack.device.serial_upload import ShellUploader
from edgepack.device.serial_virtual import (
    SerialConsole,
    start_serial_console,
    stop_serial_console,
)
from edgepack.device.targets import parse_target
from edgepack.device.transport import TransportOptions, connect
from edgepack.errors import DeviceError
from edgepack.spec.boards import Console

USER, PASSWORD = "root", "s3cret"


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SerialConsole]:
    d = tmp_path_factory.mktemp("serial-console")
    c = start_serial_console("aarch64", d, login_user=USER, password=PASSWORD)
    yield c
    stop_serial_console(c)


@pytest.fixture(scope="module")
def port(console: SerialConsole) -> Iterator[Any]:
    p = serial.Serial(console.tty, 115200, timeout=0.2)
    yield p
    p.close()


@pytest.fixture(scope="module")
def shell(port: Any, tmp_path_factory: pytest.TempPathFactory) -> ShellDriver:
    log = tmp_path_factory.mktemp("serial-log") / "console.log"
    sh = ShellDriver(port, user=USER, password=PASSWORD, login_timeout=60, log_path=log)
    sh.start()
    return sh


def _random(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def test_login_prompt_and_commands(shell: ShellDriver, console: SerialConsole) -> None:
    # The gate asked login: and Password: with echo; the driver then set its own prompt.
    assert shell.run("uname -m").output == "aarch64"
    res = shell.run("printf 'a\\nb\\n'; false")
    assert (res.output, res.exit_code) == ("a\nb", 1)
    assert shell.run("pwd").output == console.device_root
    # A line longer than the 80-column terminal, which the tty wraps when echo is on.
    long = "x" * 300
    assert shell.run(f"echo {long}").output == long


def test_wrong_password_is_reported(tmp_path: Path) -> None:
    c = start_serial_console("aarch64", tmp_path, login_user=USER, password=PASSWORD)
    try:
        with serial.Serial(c.tty, 115200, timeout=0.2) as p:
            sh = ShellDriver(p, user=USER, password="wrong", login_timeout=60)
            with pytest.raises(DeviceError, match="refused"):
                sh.start()
    finally:
        stop_serial_console(c)


def test_applets_detected(shell: ShellDriver) -> None:
    found = shell.applets()
    assert found == {name: True for name in
                     ("base64", "sha256sum", "md5sum", "od", "printf", "dd", "stty", "head",
                      "gunzip")}


@pytest.mark.parametrize(("method", "stream", "size"), [
    ("base64", True, 150_000), ("printf", True, 40_000),
    ("base64", False, 6_000), ("printf", False, 3_000),
])
def test_upload_is_identical(shell: ShellDriver, console: SerialConsole, method: str,
                             stream: bool, size: int) -> None:
    data = _random(size, seed=size)
    up = ShellUploader(shell, method=method, stream=stream)  # type: ignore[arg-type]
    dest = f"tmp/up-{method}-{int(stream)}.bin"
    report = up.upload(data, dest, mode=0o755)
    on_board = Path(console.device_root) / dest
    assert hashlib.sha256(on_board.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()
    assert report.method == method
    assert os.stat(on_board).st_mode & 0o777 == 0o755
    assert not (Path(console.device_root) / (dest + ".ep-part")).exists()


def test_missing_base64_falls_back_to_printf(port: Any, shell: ShellDriver,
                                             console: SerialConsole) -> None:
    # A vendor busybox without base64: same shell, the applet reported missing.
    vendor = ShellDriver(port, user=USER, password=PASSWORD, token=shell.token,
                         disabled_applets=frozenset({"base64"}))
    vendor._setup()
    assert vendor.applets()["base64"] is False
    up = ShellUploader(vendor)
    assert up.method == "printf"
    data = _random(20_000, seed=7)
    up.upload(data, "tmp/vendor.bin")
    assert (Path(console.device_root) / "tmp/vendor.bin").read_bytes() == data


def test_upload_through_noisy_line(tmp_path: Path) -> None:
    c = start_serial_console("aarch64", tmp_path / "board")
    faults = Faults(bit_flip_rate=1e-4, drop_rate=1e-4, delay_s=0.001, jitter_s=0.005)
    proxy = FaultProxy(c.tty, tmp_path / "ttyNOISY", faults=faults, seed=11)
    try:
        with proxy, serial.Serial(str(tmp_path / "ttyNOISY"), 115200, timeout=0.2) as p:
            sh = ShellDriver(p, login_timeout=60)
            sh.start()
            data = _random(6_000, seed=3)
            report = ShellUploader(sh).upload(data, "tmp/noisy.bin")
            got = (Path(c.device_root) / "tmp/noisy.bin").read_bytes()
            assert got == data
            counters = proxy.counters
        assert proxy.error is None
        # The line really was noisy in both directions, and the upload recovered from it.
        assert counters.to_device.bits_flipped + counters.to_device.bytes_dropped > 0
        assert counters.to_host.bits_flipped + counters.to_host.bytes_dropped > 0
        assert report.chunks_resent > 0 or sh.stats.resyncs > 0
    finally:
        stop_serial_console(c)


def test_dead_console_is_reported(tmp_path: Path) -> None:
    # A pty with nobody behind it: nothing ever answers the login pokes.
    master, slave = os.openpty()
    try:
        with serial.Serial(os.ttyname(slave), 115200, timeout=0.2) as p:
            sh = ShellDriver(p, login_timeout=4)
            with pytest.raises(DeviceError, match="no shell prompt"):
                sh.start()
    finally:
        os.close(master)
        os.close(slave)
    # A console that dies during a session: reported, not hung.
    c = start_serial_console("aarch64", tmp_path)
    with serial.Serial(c.tty, 115200, timeout=0.2) as p:
        sh = ShellDriver(p, dead_timeout=5)
        sh.start()
        stop_serial_console(c)
        with pytest.raises(DeviceError, match="console"):
            sh.run("echo still-there", timeout=3)


def test_board_file_console_drives_the_login(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # A console whose login asks "Username:" and "Passphrase:" (not login:/Password:): the
    # board file's console settings say so, and the URI names no user (the board file's).
    c = start_serial_console("aarch64", tmp_path / "board", login_user="admin",
                             password=PASSWORD, prompts=("Username: ", "Passphrase: "))
    board = Console(baud=115200, login="admin", prompt="[#$] ?$", login_prompt="Username: ?$",
                    password_prompt="Passphrase: ?$", login_timeout_s=60)
    target = parse_target(f"serial://{c.tty}?root={c.device_root}")
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    try:
        # The built-in prompts do not match this console: no login, and it says so in time.
        with serial.Serial(c.tty, 115200, timeout=0.2) as p:
            sh = ShellDriver(p, user="admin", password=PASSWORD, login_timeout=6)
            with pytest.raises(DeviceError, match="no shell prompt on the console within 6s"):
                sh.start()
        t = connect(target, TransportOptions(console=board))
        assert isinstance(t, SerialTransport)
        try:
            assert t.settings.user == "admin" and t.shell.login_timeout == 60
            res = t.run_command("echo logged-in")
            assert (res.exit_code, res.stdout) == (0, b"logged-in")
        finally:
            t.close()
    finally:
        stop_serial_console(c)

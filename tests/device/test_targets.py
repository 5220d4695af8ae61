# SPDX-License-Identifier: Apache-2.0
"""Targets that cannot go wrong: ``virtual:BOARD[/serial]`` resolves to the running virtual
board, and a target on this machine without ``root=`` is refused before anything connects."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from edgepack.cli import main as cli_main
from edgepack.device.targets import check_install_root, is_this_host, parse_target
from edgepack.errors import ExitCode, UsageError


@pytest.mark.parametrize("uri", [
    "ssh://root@127.0.0.1", "ssh://root@127.0.0.2:2222", "ssh://root@localhost",
    "ssh://root@[::1]:22", f"ssh://root@{socket.gethostname()}",
])
def test_a_target_on_this_machine_needs_a_root(uri: str) -> None:
    target = parse_target(uri)
    assert is_this_host(target)
    with pytest.raises(UsageError, match=r"this target is this machine.*root="):
        check_install_root(target)
    check_install_root(parse_target(uri + "?root=/tmp/board-root"))  # explicit: fine


def test_an_address_of_this_machine_is_this_machine() -> None:
    # The address this machine uses to reach others: not loopback, but its own.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: no packet is sent for a UDP connect
            own = s.getsockname()[0]
        except OSError:
            own = "127.0.0.1"  # no route at all: loopback is the only address
    assert is_this_host(parse_target(f"ssh://root@{own}"))


def test_remote_targets_use_the_board_root() -> None:
    for uri in ("ssh://root@192.0.2.10", "ssh://pi@board1.lan", "serial:///dev/ttyUSB0"):
        target = parse_target(uri)
        assert not is_this_host(target)
        check_install_root(target)


def test_a_pseudo_terminal_is_this_machine(tmp_path: Path) -> None:
    master, slave = os.openpty()
    try:
        link = tmp_path / "ttyV"
        link.symlink_to(os.ttyname(slave))
        target = parse_target(f"serial://{link}?baud=115200")
        assert is_this_host(target)
        with pytest.raises(UsageError, match="root="):
            check_install_root(target)
    finally:
        os.close(master)
        os.close(slave)


def test_bench_refuses_a_local_target_without_root(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code = cli_main(["bench", str(tmp_path / "a.epk"), "--board", "hi3559a",
                     "--target", "ssh://root@127.0.0.1", "--key", str(tmp_path / "k"),
                     "--publisher", str(tmp_path / "p")])
    err = capsys.readouterr().err
    assert code == ExitCode.USAGE
    assert err.count("edgepack: error:") == 1 and "root=" in err and "Traceback" not in err


def test_virtual_targets_resolve_to_the_running_board(vboard: dict[str, object]) -> None:
    ssh = parse_target("virtual:hi3559a")
    assert ssh.scheme == "ssh" and ssh.host == "127.0.0.1" and ssh.port == vboard["port"]
    assert ssh.root == vboard["root"] and ssh.identity == vboard["identity"]
    assert ssh.known_hosts == vboard["known_hosts"]
    serial = parse_target("virtual:hi3559a/serial")
    console = vboard["serial"]
    assert isinstance(console, dict)
    assert serial.scheme == "serial" and serial.device == console["tty"]
    assert serial.root == vboard["root"]
    check_install_root(ssh)
    check_install_root(serial)


def test_unknown_or_stopped_virtual_boards_are_usage_errors(vboard: dict[str, object]) -> None:
    with pytest.raises(UsageError, match="virtual:rpi4 is not running") as exc:
        parse_target("virtual:rpi4")
    assert exc.value.hint and "edgepack device up virtual:rpi4" in exc.value.hint
    with pytest.raises(UsageError, match="virtual:hi3559a/serial"):
        parse_target("virtual:hi3559a/usb")

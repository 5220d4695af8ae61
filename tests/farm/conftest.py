# SPDX-License-Identifier: Apache-2.0
"""A one-board labgrid farm on 127.0.0.1, all real processes: ``labgrid-coordinator``, a
virtual host board (sshd, and a busybox console on a pty), ``ser2net`` exporting that console
over TCP, and ``labgrid-exporter`` publishing the board's NetworkService (its sshd) and
NetworkSerialPort (ser2net) to the coordinator. A place ``farm-host`` (tags ``board=host``,
``lab=ci``) matches them.

The host SDK (runner + agent) the benches use comes from the shared cache under build/cache.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PLACE = "farm-host"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"{what} did not listen on 127.0.0.1:{port}")


def _spawn(argv: list[str], log: Path, **kw: object) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:  # the child keeps its own descriptor
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, **kw)  # type: ignore[call-overload,no-any-return]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Relay(ThreadingHTTPServer):
    """A network power switch (labgrid's ``simplerest`` model): GET /relay/0/{0,1} switches,
    GET /relay/0 reads. Switching on resumes the board's sshd (a test freezes it with SIGSTOP
    to make the board stop answering)."""

    def __init__(self, sshd_pid: int) -> None:
        super().__init__(("127.0.0.1", 0), _RelayHandler)
        self.sshd_pid = sshd_pid
        self.switched: list[str] = []
        self.on = True


class _RelayHandler(BaseHTTPRequestHandler):
    server: Relay

    def do_GET(self) -> None:
        parts = self.path.strip("/").split("/")
        if len(parts) == 3:
            self.server.switched.append(parts[2])
            self.server.on = parts[2] == "1"
            if self.server.on:
                os.kill(self.server.sshd_pid, signal.SIGCONT)
        body = b"1" if self.server.on else b"0"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass(frozen=True)
class Farm:
    coordinator: str
    board: dict[str, object]  # `edgepack device up --json`
    console_port: int
    env: dict[str, str]
    state: Path
    relay: Relay = field(compare=False)

    def client(self, *argv: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
        env = dict(self.env)
        if user:
            env["LG_USERNAME"] = user
        return subprocess.run([str(BIN / "labgrid-client"), "-x", self.coordinator, *argv],
                              env=env, capture_output=True, text=True, timeout=60)

    def target(self, **extra: str) -> str:
        q = {"coordinator": self.coordinator, "identity": str(self.board["identity"]),
             "root": str(self.board["root"]), **extra}
        return f"labgrid://{PLACE}?" + "&".join(f"{k}={quote(v, safe='/:')}"
                                                for k, v in q.items())

    def holder(self) -> str | None:
        out = self.client("-p", PLACE, "show").stdout
        for line in out.splitlines():
            if line.strip().startswith("acquired:"):
                value = line.split(":", 1)[1].strip()
                return None if value in ("", "None") else value
        return None


@pytest.fixture(scope="session")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    for tool in ("labgrid-coordinator", "labgrid-exporter", "labgrid-client"):
        assert (BIN / tool).is_file(), f"{tool} missing: scripts/setup.sh installs labgrid"
    ser2net = shutil.which("ser2net") or "/usr/sbin/ser2net"
    assert Path(ser2net).is_file(), "ser2net missing: scripts/setup.sh installs it"
    work = tmp_path_factory.mktemp("farm")
    state = work / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LG_")}
    env.update(EDGEPACK_STATE=str(state), EDGEPACK_CACHE=str(REPO / "build" / "cache"),
               LG_USERNAME="ci")
    env["NO_PROXY"] = "127.0.0.1"
    procs: list[subprocess.Popen[bytes]] = []
    up = subprocess.run([sys.executable, "-m", "edgepack.cli", "device", "up", "virtual:host",
                         "--serial", "--json"], env=env, check=True, capture_output=True,
                        text=True)
    board: dict[str, object] = json.loads(up.stdout)
    pids = board["pids"]
    assert isinstance(pids, dict)
    relay = Relay(int(pids["sshd"]))
    threading.Thread(target=relay.serve_forever, daemon=True).start()
    try:
        coord_port = _free_port()
        coord_dir = work / "coordinator"
        coord_dir.mkdir()
        procs.append(_spawn([str(BIN / "labgrid-coordinator"), "-l", f"127.0.0.1:{coord_port}"],
                            work / "coordinator.log", cwd=coord_dir, env=env))
        _wait_port(coord_port, "labgrid-coordinator")
        serial = board["serial"]
        assert isinstance(serial, dict)
        tty = urlsplit(str(serial["uri"])).path
        console_port = _free_port()
        (work / "ser2net.yaml").write_text(
            "connection: &console\n"
            f"  accepter: tcp,127.0.0.1,{console_port}\n"
            f"  connector: serialdev,{tty},115200n81,local\n")
        procs.append(_spawn(
            [ser2net, "-n", "-c", str(work / "ser2net.yaml"), "-P", str(work / "ser2net.pid")],
            work / "ser2net.log", env=env))
        _wait_port(console_port, "ser2net")
        (work / "exporter.yaml").write_text(
            "host-board:\n"
            "  NetworkService:\n"
            "    address: 127.0.0.1\n"
            f"    port: {board['port']}\n"
            f"    username: {board['user']}\n"
            "  NetworkSerialPort:\n"
            "    host: 127.0.0.1\n"
            f"    port: {console_port}\n"
            "  NetworkPowerPort:\n"
            "    model: simplerest\n"
            f"    host: 'http://127.0.0.1:{relay.server_address[1]}/relay/{{index}}/{{value}}'\n"
            "    index: 0\n")
        procs.append(_spawn(
            [str(BIN / "labgrid-exporter"), "-c", f"127.0.0.1:{coord_port}", "-n", "bench1",
             "--hostname", "127.0.0.1", str(work / "exporter.yaml")],
            work / "exporter.log", cwd=work, env=env))
        f = Farm(f"127.0.0.1:{coord_port}", board, console_port, env, state, relay)
        deadline = time.monotonic() + 60
        while "bench1/host-board/NetworkService" not in f.client("resources").stdout:
            assert time.monotonic() < deadline, (work / "exporter.log").read_text()
            time.sleep(0.5)
        for argv in (("-p", PLACE, "create"), ("-p", PLACE, "add-match", "bench1/host-board/*"),
                     ("-p", PLACE, "set-tags", "board=host", "lab=ci")):
            done = f.client(*argv)
            assert done.returncode == 0, done.stderr
        yield f
    finally:
        relay.shutdown()
        relay.server_close()
        for proc in reversed(procs):
            _stop(proc)
        subprocess.run([sys.executable, "-m", "edgepack.cli", "device", "down"], env=env,
                       check=False, capture_output=True)


@dataclass(frozen=True)
class Artifact:
    path: Path
    key: Path
    publisher: Path


@pytest.fixture(scope="session")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Artifact:
    """A tiny classifier packed for the host board."""
    from edgepack.testing import tiny_project

    tiny = tiny_project(tmp_path_factory.mktemp("tiny"))
    return Artifact(tiny.pack(board="host"), tiny.key, tiny.publisher)

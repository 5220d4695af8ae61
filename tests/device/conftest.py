# SPDX-License-Identifier: Apache-2.0
"""Fixtures: the agent built for the host and for aarch64, a real sshd virtual board with its
serial console, the hi3559a SDK (cached under build/) and the example project packed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgepack.cli import main as cli_main
from edgepack.device import virtual
from edgepack.device.client import AgentClient
from edgepack.device.targets import Target, parse_target
from edgepack.device.transport import Transport, TransportOptions, connect, start_agent
from example_project import example_project

REPO = Path(__file__).resolve().parents[2]
AGENT_SRC = REPO / "device_agents"
BUILD = REPO / "build" / "tests-device"


def _sources() -> list[Path]:
    return sorted(p for p in AGENT_SRC.rglob("*") if p.suffix in {".cc", ".h", ".txt"})


def _stale(out: Path) -> bool:
    return not out.exists() or any(p.stat().st_mtime > out.stat().st_mtime for p in _sources())


@pytest.fixture(scope="session")
def host_agent_build() -> Path:
    """CMake build of the agent and its codec test for this machine (reused when up to date)."""
    build = BUILD / "agent-host"
    out = build / "edgepack-agent"
    if _stale(out):
        cmake = shutil.which("cmake", path=str(REPO / ".venv" / "bin")) or "cmake"
        subprocess.run([cmake, "-S", str(AGENT_SRC), "-B", str(build), "-G", "Ninja"],
                       check=True, capture_output=True)
        res = subprocess.run([cmake, "--build", str(build), "-j2"], capture_output=True,
                             text=True, check=False)
        assert res.returncode == 0, res.stdout + res.stderr
        assert "warning" not in res.stdout, res.stdout
    return build


@pytest.fixture(scope="session")
def host_agent(host_agent_build: Path) -> Path:
    return host_agent_build / "edgepack-agent"


@pytest.fixture(scope="session")
def aarch64_agent() -> Path:
    """The agent cross-built with aarch64-linux-gnu-g++ -static."""
    out = BUILD / "edgepack-agent-aarch64"
    if _stale(out):
        cxx = shutil.which("aarch64-linux-gnu-g++")
        assert cxx, "aarch64-linux-gnu-g++ missing: run scripts/setup.sh (g++-aarch64-linux-gnu)"
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        srcs = [str(p) for p in sorted((AGENT_SRC / "src").glob("*.cc"))]
        res = subprocess.run([cxx, "-std=c++17", "-Os", "-Wall", "-Wextra", "-static", "-s",
                              "-o", str(tmp), *srcs], capture_output=True, text=True,
                             check=False)
        assert res.returncode == 0 and not res.stderr, res.stderr
        os.replace(tmp, out)
    return out


@pytest.fixture(scope="session")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    d = tmp_path_factory.mktemp("edgepack-state")
    old = os.environ.get("EDGEPACK_STATE")
    os.environ["EDGEPACK_STATE"] = str(d)
    yield d
    if old is None:
        os.environ.pop("EDGEPACK_STATE", None)
    else:
        os.environ["EDGEPACK_STATE"] = old


@pytest.fixture(scope="session")
def vboard(state_dir: Path) -> Iterator[dict[str, object]]:
    """``edgepack device up virtual:hi3559a --serial --json``: a real sshd on 127.0.0.1 and a
    busybox console behind a pty, sharing one device root."""
    info = _cli_json(["device", "up", "virtual:hi3559a", "--serial", "--json"])
    pid = int(info["pids"]["sshd"])  # type: ignore[index]
    yield info
    _cli_json(["device", "down", "--json"])
    assert not virtual._alive(pid)


def _cli_json(argv: list[str]) -> dict[str, object]:
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = cli_main(argv)
    assert code == 0, buf.getvalue()
    data: dict[str, object] = json.loads(buf.getvalue())
    return data


@pytest.fixture()
def target(vboard: dict[str, object]) -> Target:
    return parse_target(str(vboard["target"]))


@pytest.fixture()
def transport(vboard: dict[str, object], target: Target) -> Iterator[Transport]:
    t = connect(target, TransportOptions(known_hosts=Path(str(vboard["known_hosts"]))))
    yield t
    t.close()


@pytest.fixture()
def agent(transport: Transport, target: Target, host_agent: Path) -> Iterator[AgentClient]:
    assert target.root
    client, _ = start_agent(transport, target.root, host_agent)
    yield client
    client.bye()
    client.stream.close()


@pytest.fixture(scope="session")
def hi3559a_sdk() -> Iterator[Path]:
    """The board's SDK (runner + agent), cross-built once and cached under build/."""
    from edgepack.build.sdkbuild import build_sdk

    old = os.environ.get("EDGEPACK_CACHE")
    os.environ["EDGEPACK_CACHE"] = str(REPO / "build" / "cache")
    try:
        yield build_sdk("hi3559a", REPO / "build" / "tests-device" / "sdk").sdk_dir
    finally:
        if old is None:
            os.environ.pop("EDGEPACK_CACHE", None)
        else:
            os.environ["EDGEPACK_CACHE"] = old


@pytest.fixture(scope="session")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example project's classifier (pre -> model -> post) packed with fresh keys."""
    root = example_project(tmp_path_factory.mktemp("vision-demo"))
    spec = (root / "edgepack.toml").read_text()
    first = spec.index("[[models]]")
    second = spec.index("[[models]]", first + 1)
    (root / "edgepack.toml").write_text(spec[:first] + spec[second:spec.index("[pipeline]")])
    assert cli_main(["pack", str(root), "--out", str(root / "demo.epk")]) == 0
    return root

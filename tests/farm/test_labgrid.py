# SPDX-License-Identifier: Apache-2.0
"""``--target labgrid://PLACE`` against a real labgrid coordinator and exporter (conftest.py).

Each bench runs as the user runs it (``python -m edgepack.cli bench``) and must leave the place
released. Cost: the first bench builds or reuses the host SDK in build/cache; each bench of
the tiny model then takes a few seconds.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edgepack.device.labgrid import Place, acquire, place_of, place_resources, release
from edgepack.device.targets import parse_target
from edgepack.errors import UsageError

PLACE = "farm-host"  # conftest.py
Farm = Any  # conftest.Farm
Artifact = Any  # conftest.Artifact


def _bench(farm: Farm, artifact: Artifact, target: str, out: Path | None = None,
           iterations: int = 5) -> list[str]:
    argv = [sys.executable, "-m", "edgepack.cli", "bench", str(artifact.path), "--board", "host",
            "--target", target, "--key", str(artifact.key), "--publisher",
            str(artifact.publisher), "--known-hosts", str(farm.board["known_hosts"]),
            "--iterations", str(iterations), "--warmup", "1"]
    return argv + (["--out-json", str(out)] if out else [])


def _run(farm: Farm, argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=farm.env, capture_output=True, text=True, timeout=1500)


def _error(stderr: str) -> str:
    """The one ``edgepack: error:`` line (progress lines come before it)."""
    (line,) = [x for x in stderr.splitlines() if x.startswith("edgepack: error:")]
    return line


def _wait_held(farm: Farm, proc: subprocess.Popen[str], timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while farm.holder() is None:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the bench never acquired the place"
        time.sleep(0.3)


def test_bench_through_the_place(farm: Farm, artifact: Artifact, tmp_path: Path) -> None:
    done = _run(farm, _bench(farm, artifact, farm.target(), tmp_path / "r.json"))
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["accuracy"]["passed"] and report["end_to_end"]["n"] == 5
    assert report["provenance"]["target"] == f"labgrid://{PLACE}"
    assert farm.holder() is None  # released on exit


def test_console_through_ser2net(farm: Farm) -> None:
    place = Place(PLACE, farm.coordinator, 0)
    acquire(place)
    try:
        serial = place_resources(place)["NetworkSerialPort"]
        assert int(serial["port"]) == farm.console_port
        with socket.create_connection((str(serial["host"]), int(serial["port"])), 10) as s:
            s.settimeout(10)
            s.sendall(b"echo farm-$((6*7))\n")
            seen = b""
            deadline = time.monotonic() + 10
            while b"farm-42" not in seen and time.monotonic() < deadline:
                seen += s.recv(4096)
        assert b"farm-42" in seen
    finally:
        release(place)


def test_two_benches_queue_on_one_place(farm: Farm, artifact: Artifact, tmp_path: Path) -> None:
    """Both benches find the place held (by alice), wait in the queue, and once she releases
    it each gets the place in turn: the coordinator hands it to one holder at a time."""
    assert farm.client("-p", PLACE, "acquire", user="alice").returncode == 0
    procs: list[tuple[subprocess.Popen[str], Path]] = []
    try:
        for name in ("a", "b"):
            log = tmp_path / f"{name}.err"
            with log.open("w") as err:
                procs.append((subprocess.Popen(
                    _bench(farm, artifact, farm.target(wait="600"), tmp_path / f"{name}.json"),
                    env=farm.env, stdout=subprocess.DEVNULL, stderr=err, text=True), log))
        deadline = time.monotonic() + 600
        while not all("waiting up to 600 s" in log.read_text() for _, log in procs):
            assert all(p.poll() is None for p, _ in procs), [log.read_text() for _, log in procs]
            assert time.monotonic() < deadline
            time.sleep(0.3)
    finally:
        assert farm.client("-p", PLACE, "release", user="alice").returncode == 0
    for proc, log in procs:
        assert proc.wait(timeout=900) == 0, log.read_text()
        assert f"labgrid place {PLACE} is held by " in log.read_text()
    for name in ("a", "b"):
        assert json.loads((tmp_path / f"{name}.json").read_text())["accuracy"]["passed"]
    assert farm.holder() is None


@contextlib.contextmanager
def _sshd_frozen(farm: Farm) -> Iterator[None]:
    """The board's sshd stopped (SIGSTOP): SSH connects time out until the power relay or the
    end of the block resumes it. The relay's switch log starts empty."""
    pids = farm.board["pids"]
    assert isinstance(pids, dict)
    farm.relay.switched.clear()
    os.kill(int(pids["sshd"]), signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(int(pids["sshd"]), signal.SIGCONT)


def test_a_silent_board_is_power_cycled(farm: Farm, artifact: Artifact) -> None:
    """sshd frozen: the bench's SSH connect times out, edgepack power-cycles the place through
    its NetworkPowerPort (off, on: the relay resumes sshd) and the bench then runs."""
    with _sshd_frozen(farm):
        done = _run(farm, _bench(farm, artifact, farm.target()))
    assert done.returncode == 0, done.stderr
    assert f"labgrid place {PLACE}: board does not answer; power-cycling it" in done.stderr
    assert farm.relay.switched == ["0", "1"]
    assert farm.holder() is None


def test_place_held_by_someone_else(farm: Farm, artifact: Artifact) -> None:
    assert farm.client("-p", PLACE, "acquire", user="alice").returncode == 0
    try:
        holder = farm.holder()
        assert holder is not None and holder.endswith("/alice")
        done = _run(farm, _bench(farm, artifact, farm.target()))
        assert done.returncode == 8, done.stderr
        assert _error(done.stderr) == (
            f"edgepack: error: labgrid place {PLACE} is held by {holder}")
        started = time.monotonic()
        done = _run(farm, _bench(farm, artifact, farm.target(wait="2")))
        assert done.returncode == 8 and time.monotonic() - started >= 2
        assert f"labgrid place {PLACE} is held by {holder} (waited 2 s)" in done.stderr
        assert "Traceback" not in done.stderr
    finally:
        assert farm.client("-p", PLACE, "release", user="alice").returncode == 0


def test_unknown_place_is_named(farm: Farm, artifact: Artifact) -> None:
    target = farm.target().replace(f"labgrid://{PLACE}?", "labgrid://no-such-board?")
    done = _run(farm, _bench(farm, artifact, target))
    assert done.returncode == 8
    assert _error(done.stderr).startswith(
        "edgepack: error: labgrid place no-such-board does not exist")


def _default_sigint() -> None:
    # A job started in the background by a non-interactive shell inherits SIGINT ignored, and
    # Python then installs no KeyboardInterrupt handler: the bench's Ctrl-C must be deliverable
    # however the suite was started.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_releases_the_place(farm: Farm, artifact: Artifact) -> None:
    proc = subprocess.Popen(_bench(farm, artifact, farm.target(), iterations=10_000_000),
                            env=farm.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=_default_sigint)
    _wait_held(farm, proc)
    # Ctrl-C while the bench runs on the board. The run must outlast the wait: 100000
    # iterations of the tiny model once finished first and the bench exited 0.
    time.sleep(2.0)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert farm.holder() is None


def _by_tags(farm: Farm, tags: str, **extra: str) -> str:
    target: str = farm.target(tags=tags, **extra)
    return target.replace(f"labgrid://{PLACE}?", "labgrid://?")


def test_bench_on_a_place_chosen_by_tags(farm: Farm, artifact: Artifact, tmp_path: Path) -> None:
    """labgrid://?tags=...: the coordinator allocates a matching place through a reservation;
    the bench runs there, then the place is released and the reservation cancelled."""
    done = _run(farm, _bench(farm, artifact, _by_tags(farm, "board=host,lab=ci"),
                             tmp_path / "r.json"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"labgrid tags board=host,lab=ci: place {PLACE}" in done.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["accuracy"]["passed"]
    assert report["provenance"]["target"] == "labgrid://?tags=board=host,lab=ci"
    assert farm.holder() is None
    assert "allocated" not in farm.client("reservations").stdout


def test_tags_no_place_has_are_named(farm: Farm, artifact: Artifact) -> None:
    done = _run(farm, _bench(farm, artifact, _by_tags(farm, "board=rpi4")))
    assert done.returncode == 8
    assert _error(done.stderr).startswith(
        f"edgepack: error: no labgrid place has the tags board=rpi4 (coordinator "
        f"{farm.coordinator}; places: {PLACE})")


def test_every_tagged_place_held(farm: Farm, artifact: Artifact) -> None:
    assert farm.client("-p", PLACE, "acquire", user="alice").returncode == 0
    try:
        holder = farm.holder()
        done = _run(farm, _bench(farm, artifact, _by_tags(farm, "board=host")))
        assert done.returncode == 8, done.stderr
        assert _error(done.stderr) == ("edgepack: error: every labgrid place with tags "
                                       f"board=host is held ({PLACE} by {holder})")
    finally:
        assert farm.client("-p", PLACE, "release", user="alice").returncode == 0
    assert "waiting" not in farm.client("reservations").stdout  # cancelled, not left queued


def test_bench_over_the_console(farm: Farm, artifact: Artifact, tmp_path: Path) -> None:
    """via=console: the whole bench through the place's NetworkSerialPort (ser2net's TCP port
    in front of the board's console), with the board's sshd frozen to prove SSH is unused."""
    with _sshd_frozen(farm):
        done = _run(farm, _bench(farm, artifact, farm.target(via="console"), tmp_path / "r.json",
                                 iterations=3))
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["accuracy"]["passed"] and report["end_to_end"]["n"] == 3
    assert farm.relay.switched == []  # never power-cycled: the console answered
    assert farm.holder() is None


def test_target_parsing() -> None:
    t = parse_target("labgrid://rpi4-1?coordinator=lab:20408&root=/opt/ep&wait=30")
    assert (t.scheme, t.host, t.root) == ("labgrid", "rpi4-1", "/opt/ep")
    assert place_of(t) == Place("rpi4-1", "lab:20408", 30.0)
    t = parse_target("labgrid://?tags=board=rpi4,lab=a&wait=5")
    assert place_of(t) == Place("", None, 5.0, (("board", "rpi4"), ("lab", "a")))


@pytest.mark.parametrize(("uri", "message"), [
    ("labgrid://", "name the place (labgrid://PLACE) or choose one by tags"),
    ("labgrid://p?tags=board=host", "name a place or give tags, not both"),
    ("labgrid://?tags=board", "tags are KEY=VALUE.*, got 'board'"),
    ("labgrid://p?via=telnet", "via must be one of ssh, console"),
    ("labgrid://p?port=2", "unknown parameter(s) port"),
    ("labgrid://p?wait=soon", "wait must be a number of seconds >= 0"),
    ("labgrid://p?root=opt", "root must be an absolute path"),
    ("labgrid://p?wait=1&wait=2", "give 'wait' once"),
])
def test_target_mistakes(uri: str, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_target(uri)

# SPDX-License-Identifier: Apache-2.0
"""The pytest plugin, through its entry point: the example suite run as a user runs it.

``pytest examples/pytest-board --edgepack-board host`` in a subprocess: the plugin is loaded
because edgepack is installed (no ``-p``), starts virtual:host for the session, the example
packs a model, benches it on the board through the agent, runs a command there, skips the
test marked for another board, and stops the board at the end. The host SDK comes from the
shared cache under build/cache (the first run builds it: a few minutes on 2 cores).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "pytest-board"


def _pytest(state: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["EDGEPACK_STATE"] = str(state)
    env["EDGEPACK_CACHE"] = str(REPO / "build" / "cache")
    return subprocess.run([sys.executable, "-m", "pytest", str(EXAMPLE), "-p", "no:cacheprovider",
                           "-q", "-rs", *argv], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=1500)


def _running(state: Path) -> list[str]:
    done = subprocess.run([sys.executable, "-m", "edgepack.cli", "device", "status", "--json"],
                          env={**os.environ, "EDGEPACK_STATE": str(state)}, check=True,
                          capture_output=True, text=True)
    return [b["board"] for b in json.loads(done.stdout) if b["running"]]


def test_plugin_is_registered_by_entry_point() -> None:
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="pytest11") if e.name == "edgepack"]
    assert ep.value == "edgepack.pytest_plugin"


def test_example_suite_on_virtual_host(tmp_path: Path) -> None:
    done = _pytest(tmp_path, "--edgepack-board", "host")
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "3 passed, 1 skipped" in out, out
    assert "for board rpi4, rpi4-armhf, not host" in out, out
    assert _running(tmp_path) == []  # started for the session, stopped at its end


def test_marked_tests_skip_without_a_board(tmp_path: Path) -> None:
    done = _pytest(tmp_path, "-k", "raspberry")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "needs a board (rpi4, rpi4-armhf): pass --edgepack-board" in done.stdout


@pytest.mark.parametrize(("argv", "message"), [
    ((), "edgepack_device needs --edgepack-board BOARD"),
    (("--edgepack-board", "host", "--edgepack-target", "virtual:nosuch"),
     "edgepack: error: --edgepack-target virtual:nosuch: "),
])
def test_device_without_a_usable_board_is_one_clear_error(
        tmp_path: Path, argv: tuple[str, ...], message: str) -> None:
    done = _pytest(tmp_path, "-k", "board_answers", *argv)
    assert done.returncode == 1
    assert message in done.stdout, done.stdout
    assert "Traceback" not in done.stdout

# SPDX-License-Identifier: Apache-2.0
"""pytest plugin: flash-and-test on a board from a test suite (docs/pytest-plugin.md).

Installing edgepack enables it (entry point ``pytest11``). Options:

- ``--edgepack-board B``: the board the session tests (a board id, see ``edgepack boards``);
- ``--edgepack-target T``: how to reach it, as ``edgepack bench --target`` (``ssh://``,
  ``serial://``, ``labgrid://PLACE``, ``virtual:B``); default ``virtual:B``. A ``virtual:``
  target is started for the session when it is not running and stopped at its end;
- ``--edgepack-known-hosts``, ``--edgepack-trust-new-host``, ``--edgepack-sdk``: as the bench's
  flags of the same names.

Fixture ``edgepack_device`` (session scope) has ``.bench(artifact, key=, publisher=, ...)``
returning the report as a dict (schema ``edgepack.report/2``) and ``.run(command)`` running a
shell command on the board. Marker ``@pytest.mark.edgepack_board("rpi4", "host")``: the test
runs only when the session's board is one of those (else it is skipped, saying which board it
needs); without ``--edgepack-board`` such tests are skipped as well.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

MARKER = "edgepack_board"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("edgepack", "edgepack: test on a board")
    group.addoption("--edgepack-board", metavar="BOARD", default=None,
                    help="board id the tests run on (see `edgepack boards`)")
    group.addoption("--edgepack-target", metavar="TARGET", default=None,
                    help="ssh://..., serial://..., labgrid://PLACE or virtual:BOARD "
                    "(default: virtual:BOARD, started for the session)")
    group.addoption("--edgepack-known-hosts", metavar="FILE", default=None,
                    help="known_hosts file for ssh targets")
    group.addoption("--edgepack-trust-new-host", action="store_true", default=False,
                    help="accept and record an unknown host key (never a changed one)")
    group.addoption("--edgepack-sdk", metavar="DIR", default=None,
                    help="a built SDK tree for the board (default: build or reuse the cached one)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(*boards): run the test only when --edgepack-board is one of "
        "these board ids")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    board = config.getoption("--edgepack-board")
    for item in items:
        marks = list(item.iter_markers(MARKER))
        if not marks:
            continue
        wanted = {str(b) for m in marks for b in m.args}
        if board is None:
            item.add_marker(pytest.mark.skip(
                reason=f"needs a board ({', '.join(sorted(wanted))}): pass --edgepack-board"))
        elif wanted and board not in wanted:
            item.add_marker(pytest.mark.skip(
                reason=f"for board {', '.join(sorted(wanted))}, not {board}"))


@dataclass(frozen=True)
class CommandOutput:
    """``edgepack_device.run``: exit code and decoded output of a shell command on the board."""

    exit_code: int
    stdout: str
    stderr: str


class EdgepackDevice:
    """The session's board: bench artifacts on it, run commands on it."""

    def __init__(self, board: str, target: str, *, known_hosts: Path | None = None,
                 trust_new_host: bool = False, sdk: Path | None = None) -> None:
        self.board = board
        self.target = target
        self.known_hosts = known_hosts
        self.trust_new_host = trust_new_host
        self.sdk = sdk

    def bench(self, artifact: str | Path, *, key: str | Path, publisher: str | Path,
              iterations: int | None = 20, warmup: int = 2, threads: int = 1,
              duration: float | None = None, input: str | Path | None = None,
              project: str | Path | None = None, tolerance: float = 1e-3,
              device_key: str | None = None, profile: bool = False) -> dict[str, Any]:
        """Benchmark ``artifact`` on the board; the report as a dict (``edgepack.report/2``).
        Its ``accuracy.passed`` says whether the outputs matched the host reference.
        ``duration`` (seconds) replaces the fixed ``iterations``; ``input`` and ``project``
        as for ``edgepack.api.bench``."""
        from edgepack import api

        return api.bench(artifact, board=self.board, target=self.target, key=key,
                         publisher=publisher,
                         iterations=None if duration is not None else iterations,
                         warmup=warmup, duration=duration, input=input, project=project,
                         threads=threads, tolerance=tolerance, known_hosts=self.known_hosts,
                         trust_new_host=self.trust_new_host, sdk=self.sdk,
                         device_key=device_key, profile=profile).data

    def run(self, command: str, *, timeout: float = 60.0) -> CommandOutput:
        """Run a shell command line on the board (through the target's transport)."""
        from edgepack.device.targets import parse_target
        from edgepack.device.transport import TransportOptions, connect
        from edgepack.spec.boards import load_board

        transport = connect(parse_target(self.target),
                            TransportOptions(known_hosts=self.known_hosts,
                                             trust_new_host=self.trust_new_host,
                                             console=load_board(self.board).console))
        try:
            res = transport.run_command(command, timeout=timeout)
        finally:
            transport.close()
        return CommandOutput(res.exit_code, res.stdout.decode("utf-8", "replace"),
                             res.stderr.decode("utf-8", "replace"))


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


@pytest.fixture(scope="session")
def edgepack_device(pytestconfig: pytest.Config) -> Iterator[EdgepackDevice]:
    """The board named by --edgepack-board, reached through --edgepack-target."""
    from edgepack import api
    from edgepack.device import virtual
    from edgepack.errors import EdgepackError

    board = pytestconfig.getoption("--edgepack-board")
    if not board:
        pytest.fail("edgepack_device needs --edgepack-board BOARD "
                    "(and --edgepack-target, default virtual:BOARD)", pytrace=False)
    target = pytestconfig.getoption("--edgepack-target") or f"virtual:{board}"
    started: str | None = None
    try:
        if target.startswith("virtual:"):
            board_id = virtual.parse_virtual(target).partition("/")[0]
            running = {b["board"] for b in virtual.status() if b["running"]}
            if board_id not in running:
                api.device_up(board_id, serial=target.endswith("/serial"))
                started = board_id
    except EdgepackError as e:
        pytest.fail(f"edgepack: error: --edgepack-target {target}: {e}", pytrace=False)
    try:
        yield EdgepackDevice(
            board, target, known_hosts=_path(pytestconfig.getoption("--edgepack-known-hosts")),
            trust_new_host=bool(pytestconfig.getoption("--edgepack-trust-new-host")),
            sdk=_path(pytestconfig.getoption("--edgepack-sdk")))
    finally:
        if started is not None:
            api.device_down(started)

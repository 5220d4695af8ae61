# SPDX-License-Identifier: Apache-2.0
"""edgepack as a library: the CLI's commands as functions that return typed results.

Each function does what the command of the same name does and returns a dataclass; the
commands in ``edgepack.commands`` only parse flags, call these and format the result. User
mistakes raise ``edgepack.errors.EdgepackError`` subclasses (the CLI prints them as one
``edgepack: error:`` line). Nothing here prints, except the progress lines of a long build or
bench, which go to stderr (``log`` of :func:`bench`). docs/python-api.md.

    from edgepack import api
    packed = api.pack("my-project", "out/model.epk", board="rpi4")
    board = api.device_up("host")
    report = api.bench(packed.path, board="host", target=board.target, key=..., publisher=...)
    print(report.p50_ms, report.passed)
    api.device_down("host")
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The typed results other modules already define are re-exported, so `api` is the one import.
from edgepack.artifact.pack import PackResult
from edgepack.bench.report import Comparison
from edgepack.build.sdkbuild import SdkBuild
from edgepack.device.virtual import VirtualBoard
from edgepack.errors import UsageError
from edgepack.spec.boards import Board

__all__ = [
    "BenchReport", "Board", "BuildResult", "Comparison", "PackResult", "ReportComparison",
    "SdkBuild", "VirtualBoard", "bench", "boards", "build", "compare_reports", "device_down",
    "device_up", "pack", "sdk_build",
]

PathLike = str | Path


@dataclass(frozen=True)
class BuildResult:
    """``edgepack build``: the artifact packed for the board and the board's SDK."""

    artifact: PackResult
    sdk: SdkBuild


@dataclass(frozen=True)
class BenchReport:
    """``edgepack bench``: the report (schema ``edgepack.report/2``) and its headline numbers."""

    data: dict[str, Any]  # the whole report, as written by `edgepack bench --json`

    @property
    def passed(self) -> bool:
        """Every output within tolerance of the host reference."""
        return bool(self.data["accuracy"]["passed"])

    @property
    def p50_ms(self) -> float:
        """Median end-to-end latency of the timed runs, in ms."""
        return float(self.data["end_to_end"]["p50"])

    @property
    def p90_ms(self) -> float:
        return float(self.data["end_to_end"]["p90"])


@dataclass(frozen=True)
class ReportComparison:
    """``edgepack report compare``: the comparison and the threshold it was judged at."""

    comparison: Comparison
    threshold: float

    @property
    def failed(self) -> bool:
        """Something regressed (latency beyond the threshold, or accuracy)."""
        return self.comparison.failed

    def to_json(self) -> dict[str, Any]:
        from edgepack.bench.report import comparison_json

        return comparison_json(self.comparison, self.threshold)


def boards(project: PathLike | None = None) -> list[Board]:
    """Every board edgepack knows: the shipped ones, ``$EDGEPACK_BOARDS_PATH``, the project's."""
    from edgepack.spec.boards import list_boards

    return list_boards(Path(project) if project is not None else None)


def pack(project: PathLike, out: PathLike, *, board: str | None = None) -> PackResult:
    """Pack a project folder (its ``edgepack.toml``) into a signed, encrypted ``.epk``."""
    from edgepack.artifact.pack import pack_project

    return pack_project(Path(project), Path(out), board=board)


def sdk_build(board: str | Board, out: PathLike, *, jobs: int = 2) -> SdkBuild:
    """Build the board's C++ SDK into ``out/<board>/`` plus a tarball beside it."""
    from edgepack.build.sdkbuild import build_sdk

    return build_sdk(board, Path(out), jobs=jobs)


def build(project: PathLike, board: str, *, out: PathLike | None = None,
          jobs: int = 2) -> BuildResult:
    """Pack the project for ``board`` and build that board's SDK (``out`` default:
    ``PROJECT/out``). The toolchain is checked before packing."""
    from edgepack.artifact.pack import pack_project
    from edgepack.build.sdkbuild import build_sdk
    from edgepack.build.toolchains import resolve_toolchain
    from edgepack.spec.boards import load_board
    from edgepack.spec.loader import load_spec

    root = Path(project)
    folder = root if root.is_dir() else root.parent
    resolved = load_board(board, folder)
    resolve_toolchain(resolved)
    spec = load_spec(root)
    dest = Path(out) if out is not None else folder / "out"
    dest.mkdir(parents=True, exist_ok=True)
    packed = pack_project(root, dest / f"{spec.package.name}-{resolved.id}.epk",
                          board=resolved.id)
    return BuildResult(artifact=packed, sdk=build_sdk(resolved, dest, jobs=jobs))


def bench(artifact: PathLike, *, board: str, target: str, key: PathLike | None,
          publisher: PathLike, iterations: int = 100, warmup: int = 10, threads: int = 1,
          tolerance: float = 1e-3, known_hosts: PathLike | None = None,
          trust_new_host: bool = False, sdk: PathLike | None = None,
          device_key: str | None = None, profile: bool = False,
          log: Callable[[str], None] | None = None) -> BenchReport:
    """Run the artifact on a board through the device agent: latency, memory, clocks and
    accuracy against the host reference. ``target`` as for ``edgepack bench --target``."""
    from edgepack.bench.runner import BenchOptions, run_bench

    if iterations < 1:
        raise UsageError("iterations must be at least 1 (--iterations)")
    if warmup < 0 or threads < 0:
        raise UsageError("warmup and threads must not be negative (--warmup, --threads)")
    opts = BenchOptions(
        artifact=Path(artifact), board=board, target=target,
        key=Path(key) if key is not None else None, publisher=Path(publisher),
        iterations=iterations, warmup=warmup, threads=threads,
        known_hosts=Path(known_hosts) if known_hosts is not None else None,
        trust_new_host=trust_new_host, tolerance=tolerance,
        sdk_dir=Path(sdk) if sdk is not None else None, device_key=device_key,
        profile=profile)
    if log is not None:
        opts.log = log
    return BenchReport(run_bench(opts))


def compare_reports(base: PathLike | dict[str, Any], new: PathLike | dict[str, Any], *,
                    threshold: float = 0.1, force: bool = False,
                    warn: Callable[[str], None] | None = None) -> ReportComparison:
    """Compare two bench reports (files or dicts). Reports of different artifacts, boards or
    thread counts raise ``UsageError`` unless ``force``; then each mismatch goes to ``warn``
    (default: stderr)."""
    from edgepack.bench.report import compare_reports as compare
    from edgepack.bench.report import load_report, validate_report

    def _load(r: PathLike | dict[str, Any], what: str) -> dict[str, Any]:
        if isinstance(r, dict):
            validate_report(r, what)
            return r
        return load_report(Path(r))

    base_name = str(base) if not isinstance(base, dict) else "base report"
    new_name = str(new) if not isinstance(new, dict) else "new report"
    comp = compare(_load(base, base_name), _load(new, new_name), threshold)
    if comp.mismatches and not force:
        raise UsageError(f"{base_name} and {new_name} are not comparable: "
                         + "; ".join(comp.mismatches),
                         hint="compare runs of one artifact on one board with the same --threads,"
                         " or pass --force to compare anyway")
    for m in comp.mismatches:
        (warn or _stderr)(f"edgepack: warning: comparing anyway (--force): {m}")
    return ReportComparison(comp, threshold)


def device_up(board: str, *, serial: bool = False) -> VirtualBoard:
    """Start (or reuse) the virtual board ``board`` (``"host"`` or ``"virtual:host"``): a real
    sshd on 127.0.0.1, ARM boards through qemu-user. Its ``.target`` is a bench target."""
    from edgepack.device import virtual

    name = board if board.startswith("virtual:") else f"virtual:{board}"
    return virtual.up(virtual.parse_virtual(name), serial=serial)


def device_down(board: str | None = None) -> list[str]:
    """Stop the named virtual board, or all of them; returns the ids stopped."""
    from edgepack.device import virtual

    if board is None:
        return virtual.down(None)
    name = board if board.startswith("virtual:") else f"virtual:{board}"
    return virtual.down(virtual.parse_virtual(name))


def _stderr(message: str) -> None:
    from edgepack.ui import terminal_safe

    print(terminal_safe(message), file=sys.stderr)

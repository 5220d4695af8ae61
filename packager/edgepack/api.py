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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The typed results other modules already define are re-exported, so `api` is the one import.
from edgepack.artifact.pack import PackResult
from edgepack.bench.report import Comparison
from edgepack.build.doctor import Check
from edgepack.build.sdkbuild import SdkBuild
from edgepack.device.virtual import VirtualBoard
from edgepack.errors import UsageError
from edgepack.spec.boards import Board

__all__ = [
    "ArtifactInfo", "BenchReport", "Board", "BuildResult", "Check", "Comparison",
    "DoctorResult", "PackResult", "ReportComparison", "SdkBuild", "Verification",
    "VirtualBoard", "bench", "boards", "build", "compare_reports", "device_down", "device_up",
    "doctor", "inspect", "pack", "sdk_build", "verify",
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
        """Every output within tolerance of the host reference (on the golden input, and on
        ``input`` when the bench had a ``project`` to compute its reference)."""
        own = self.data.get("input", {}).get("accuracy", {"passed": True})
        return bool(self.data["accuracy"]["passed"]) and bool(own["passed"])

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


@dataclass(frozen=True)
class ArtifactInfo:
    """``edgepack inspect``: what an artifact's plaintext header says, whether its signature
    holds by the key in the header (integrity only: :func:`verify` pins the signer), and with
    a recipient key the decrypted manifest."""

    file: Path
    size: int
    format_version: int
    package: str
    version: str
    version_counter: int
    signer: str  # SHA256:... fingerprint of the key in the header
    signature_valid: bool
    recipients: list[str]  # fingerprints
    sections: list[dict[str, Any]]  # name, size, encrypted_size
    manifest: dict[str, Any] | None
    data: dict[str, Any]  # the whole record, as `edgepack inspect --json` prints it

    def to_json(self) -> dict[str, Any]:
        return self.data


@dataclass(frozen=True)
class Verification:
    """``edgepack verify``: the signature holds and is the publisher's (otherwise
    :func:`verify` raises ``ArtifactInvalid``)."""

    file: Path
    signer: str
    package: str
    version: str
    version_counter: int

    def to_json(self) -> dict[str, Any]:
        return {"file": str(self.file), "valid": True, "signer": self.signer,
                "package": self.package, "version": self.version,
                "version_counter": self.version_counter}


@dataclass(frozen=True)
class DoctorResult:
    """``edgepack doctor``: each check, and whether every required one passed."""

    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(c.ok or not c.required for c in self.checks)

    @property
    def missing(self) -> list[Check]:
        """The required checks that failed, each with its ``fix`` (the install command)."""
        return [c for c in self.checks if c.required and not c.ok]

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [c.as_dict() for c in self.checks]}


def inspect(artifact: PathLike, *, key: PathLike | None = None) -> ArtifactInfo:
    """Read an artifact's header (and with ``key``, a recipient's private key, its
    manifest). A file that is not an artifact raises ``ArtifactInvalid``."""
    from edgepack.artifact.inspection import SIGNATURE_INVALID, describe

    info = describe(Path(artifact), Path(key) if key is not None else None)
    pkg = info["package"]
    return ArtifactInfo(
        file=Path(artifact), size=int(info["size"]), format_version=int(info["format_version"]),
        package=str(pkg["name"]), version=str(pkg["version"]),
        version_counter=int(pkg["version_counter"]), signer=str(info["signer"]),
        signature_valid=info["signature"] != SIGNATURE_INVALID,
        recipients=list(info["recipients"]), sections=list(info["sections"]),
        manifest=info.get("manifest"), data=info)


def verify(artifact: PathLike, *, publisher: PathLike) -> Verification:
    """Check the artifact's signature against ``publisher`` (its public key, or the private
    key file). Raises ``ArtifactInvalid`` when it does not hold."""
    from edgepack.artifact import container, keys

    pub = keys.load_publisher_public(Path(publisher))
    header = container.verify_artifact(container.read_file(Path(artifact)), pub)
    return Verification(Path(artifact), keys.fingerprint(pub), header.package_name,
                        header.package_version, header.version_counter)


def doctor(board: str | None = None) -> DoctorResult:
    """Check the tools needed to build for ``board`` (default: every board)."""
    from edgepack.build.doctor import run_checks
    from edgepack.spec.boards import list_boards, load_board

    return DoctorResult(run_checks([load_board(board)] if board else list_boards()))


def boards(project: PathLike | None = None) -> list[Board]:
    """Every board edgepack knows: the shipped ones, ``$EDGEPACK_BOARDS_PATH``, the project's."""
    from edgepack.spec.boards import list_boards

    return list_boards(Path(project) if project is not None else None)


def pack(project: PathLike, out: PathLike, *, board: str | None = None,
         stable_sections: bool = True) -> PackResult:
    """Pack a project folder (its ``edgepack.toml``) into a signed, encrypted ``.epk``.
    ``stable_sections``: unchanged sections keep their ciphertext bytes across releases
    (docs/artifact-format.md)."""
    from edgepack.artifact.pack import pack_project

    return pack_project(Path(project), Path(out), board=board, stable_sections=stable_sections)


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
          publisher: PathLike, iterations: int | None = None, warmup: int | None = None,
          duration: float | None = None, input: PathLike | None = None,
          project: PathLike | None = None, threads: int = 1,
          cpus: str | Sequence[int] | None = None, cluster: str | None = None,
          tolerance: float = 1e-3, known_hosts: PathLike | None = None,
          trust_new_host: bool = False, sdk: PathLike | None = None,
          device_key: str | None = None, profile: bool = False,
          log: Callable[[str], None] | None = None) -> BenchReport:
    """Run the artifact on a board through the device agent: latency, memory, clocks and
    accuracy against the host reference. ``target`` as for ``edgepack bench --target``.

    ``iterations`` (exactly N) or ``duration`` (seconds: as many as fit); neither: as many as
    fit in about 20 s, 10 to 100. ``warmup`` default 2. ``input``: a ``.npy`` file, an image
    or a folder of ``<input name>.npy`` the timed runs use instead of the golden input;
    with ``project`` (the folder the artifact was packed from) the accuracy check covers the
    board's outputs for it too. ``threads=0``: every core of the device (of ``cpus``/``cluster``
    when given). ``cpus`` ("2,3", "4-7" or a list) or ``cluster`` ("big", "little" or a core
    model of the board file): the runner's threads run only there."""
    from edgepack.bench.plan import DEFAULT_WARMUP
    from edgepack.bench.runner import BenchOptions, run_bench

    if iterations is not None and duration is not None:
        raise UsageError("give iterations or duration, not both (--iterations, --duration)")
    if project is not None and input is None:
        raise UsageError("project is the host reference for an input: give input too "
                         "(--project needs --input)")
    if iterations is not None and iterations < 1:
        raise UsageError("iterations must be at least 1 (--iterations)")
    if duration is not None and not duration > 0:
        raise UsageError("duration must be a positive number of seconds (--duration)")
    if (warmup is not None and warmup < 0) or threads < 0:
        raise UsageError("warmup and threads must not be negative (--warmup, --threads; "
                         "--threads 0 uses every core)")
    opts = BenchOptions(
        artifact=Path(artifact), board=board, target=target,
        key=Path(key) if key is not None else None, publisher=Path(publisher),
        iterations=iterations, warmup=DEFAULT_WARMUP if warmup is None else warmup,
        threads=threads, duration_s=duration, cpus=_cpus(cpus, cluster), cluster=cluster,
        inputs=Path(input) if input is not None else None,
        project=Path(project) if project is not None else None,
        known_hosts=Path(known_hosts) if known_hosts is not None else None,
        trust_new_host=trust_new_host, tolerance=tolerance,
        sdk_dir=Path(sdk) if sdk is not None else None, device_key=device_key,
        profile=profile)
    if log is not None:
        opts.log = log
    return BenchReport(run_bench(opts))


def _cpus(cpus: str | Sequence[int] | None, cluster: str | None) -> tuple[int, ...] | None:
    from edgepack.bench.affinity import parse_cpu_list

    if cpus is not None and cluster is not None:
        raise UsageError("give cpus or cluster, not both (--cpus, --cluster)")
    if cpus is None:
        return None
    return parse_cpu_list(cpus if isinstance(cpus, str) else ",".join(str(int(c)) for c in cpus))


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

# SPDX-License-Identifier: Apache-2.0
"""Board files: ``boards/<id>.yaml``, one data file per board, checked against a schema.

A board names its CPU, toolchains, sysroot packages, console, install root and the processors
that can run networks (each with a backend and the ONNX ops it accepts). Lookup order for an
id: a path to a file, then ``<project>/boards/``, then each folder of ``EDGEPACK_BOARDS_PATH``
(os.pathsep separated), then the built-in ``boards/`` folder of the source tree. A board that
needs code is a sign of a missing field here: add the field, not a special case.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import jsonschema
import yaml

from edgepack.errors import EdgepackError, SpecError
from edgepack.resources import boards_dir
from edgepack.spec.arch import ARCHES
from edgepack.spec.project import Spec

BOARD_SCHEMA_VERSION = 1
BOARDS_PATH_ENV = "EDGEPACK_BOARDS_PATH"
BUILTIN_BOARDS_DIR = boards_dir()

Arch = Literal["aarch64", "armhf", "x86_64"]
ProcessorKind = Literal["cpu", "gpu", "dsp", "npu"]



class UnknownBoard(EdgepackError):
    """A board id found in no board folder; the message lists the known ids."""

    exit_code = 2


class UnknownProcessor(EdgepackError):
    exit_code = 2


@dataclass(frozen=True)
class CpuCores:
    model: str  # e.g. cortex-a73
    count: int | None  # None: as many as the machine has (the host)
    mhz: int | None = None


@dataclass(frozen=True)
class Cpu:
    cores: tuple[CpuCores, ...]
    flags: tuple[str, ...]  # compile flags for this CPU, e.g. ("-mcpu=cortex-a72",)
    # The same for zig's clang (CPU names with "_"), used by builds against an old glibc;
    # empty: ``flags`` as they are.
    zig_flags: tuple[str, ...] = ()
    # Optional extensions every core has, beyond what ``flags`` implies for the whole build:
    # "dotprod" (ARMv8.2 SDOT, aarch64) builds the int8 dot product kernel with its own flags
    # (build/toolchains.py), chosen at run time only where the CPU reports it.
    features: tuple[str, ...] = ()


@dataclass(frozen=True)
class Peak:
    value: float  # all `count` units together
    unit: str  # GFLOPS | TFLOPS | GOPS | TOPS
    dtype: str  # fp32 | fp16 | int8


@dataclass(frozen=True)
class Processor:
    id: str  # what placement names, e.g. "npu"
    kind: ProcessorKind
    name: str
    count: int | None
    backend: str  # runtime backend that drives it: cpu, opencl, tensorrt, nnie, vp6
    ops: tuple[str, ...] | None  # ONNX op types it runs; None means all
    peak: Peak | None = None

    def supports(self, op_type: str) -> bool:
        return self.ops is None or op_type in self.ops


SERIAL_BAUDS = (9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600, 1500000, 3000000)
FLOW_CONTROLS = ("none", "rtscts", "xonxoff")


@dataclass(frozen=True)
class Console:
    """How the serial transport talks to the board's console (``console:`` in the board file).

    A ``serial://`` URI's ``baud=`` and ``user=`` override ``baud`` and ``login``; a target
    with no board (``edgepack device status serial://...``) uses these defaults. The password
    is never in a board file: it comes from ``$EDGEPACK_SERIAL_PASSWORD``.
    """

    baud: int = 115_200
    login: str | None = "root"  # user name sent at the login prompt; None: no login expected
    prompt: str = r"[#$>%] ?$"  # regex matching the end of the shell prompt
    login_prompt: str = r"login: ?$"  # regex: the console asks for the user name
    password_prompt: str = r"[Pp]assword: ?$"  # regex: ... and for the password
    login_failed: str = r"Login incorrect|Login failed|incorrect password"  # regex
    line: str = "8N1"  # data bits, parity (N, E, O), stop bits
    flow: str = "none"  # none | rtscts | xonxoff
    login_timeout_s: float = 60.0  # from the first byte sent to a shell prompt
    # The rate the agent's frames switch to after the handshake (PROTOCOL.md BAUD); None:
    # the line stays at ``baud``. A ``serial://`` URI's ``fast_baud=`` overrides it.
    max_baud: int | None = None

    @property
    def bytesize(self) -> int:
        return int(self.line[0])

    @property
    def parity(self) -> str:
        return self.line[1]

    @property
    def stopbits(self) -> int:
        return int(self.line[2])

    @property
    def bits_per_byte(self) -> int:
        """Start bit + data + parity + stop bits: what one byte costs on the line."""
        return 1 + self.bytesize + (self.parity != "N") + self.stopbits


DEFAULT_CONSOLE = Console()


@dataclass(frozen=True)
class Board:
    id: str
    name: str
    soc: str
    arch: Arch
    debian_arch: str  # from spec/arch.py's table (a board file may repeat it; it must agree)
    cpu: Cpu
    toolchains: tuple[str, ...]  # GNU triples, most preferred first
    qemu: str | None  # user-mode emulator that runs its binaries on the host; None: native
    # (from spec/arch.py's table, like debian_arch)
    min_glibc: str
    sysroot_packages: tuple[str, ...]  # Debian packages of debian_arch for the sysroot
    processors: tuple[Processor, ...]
    console: Console | None  # None: no serial console (the host)
    install_root: str  # folder on the device that holds installs
    memory_mb: int | None
    storage_mb: int | None
    path: Path  # the file it was read from

    def processor(self, processor_id: str) -> Processor:
        for p in self.processors:
            if p.id == processor_id:
                return p
        known = ", ".join(p.id for p in self.processors)
        raise UnknownProcessor(f"board {self.id!r} has no processor {processor_id!r} "
                               f"(known: {known})")

    @property
    def processor_ids(self) -> tuple[str, ...]:
        return tuple(p.id for p in self.processors)


# --- lookup ------------------------------------------------------------------------------

def board_dirs(project_dir: Path | None = None) -> list[Path]:
    """Folders searched for ``<id>.yaml``, first match wins."""
    dirs = [Path(project_dir if project_dir is not None else Path.cwd()) / "boards"]
    for entry in os.environ.get(BOARDS_PATH_ENV, "").split(os.pathsep):
        if entry:
            dirs.append(Path(entry))
    dirs.append(BUILTIN_BOARDS_DIR)
    unique: list[Path] = []
    for d in dirs:
        if d.resolve() not in [u.resolve() for u in unique]:
            unique.append(d)
    return unique


def known_board_ids(project_dir: Path | None = None) -> list[str]:
    ids: set[str] = set()
    for d in board_dirs(project_dir):
        if d.is_dir():
            ids.update(p.stem for p in d.glob("*.yaml"))
    return sorted(ids)


def load_board(board_id_or_path: str | Path, project_dir: Path | None = None) -> Board:
    """A board by file path or by id (see the module doc for the lookup order)."""
    text = str(board_id_or_path)
    as_path = Path(text)
    if text.endswith((".yaml", ".yml")) or os.sep in text or as_path.is_file():
        if not as_path.is_file():
            raise UnknownBoard(f"board file {text} does not exist")
        return _load_file(as_path)
    for d in board_dirs(project_dir):
        candidate = d / f"{text}.yaml"
        if candidate.is_file():
            return _load_file(candidate)
    ids = known_board_ids(project_dir)
    close = difflib.get_close_matches(text.lower(), ids, n=1, cutoff=0.6)
    suggestion = f"; did you mean {close[0]!r}?" if close else ""
    raise UnknownBoard(f"unknown board {text!r}{suggestion} (known boards: "
                       f"{', '.join(ids) or 'none'})",
                       hint=f"add boards/{text}.yaml to the project, or a folder with it to "
                       f"{BOARDS_PATH_ENV}")


def list_boards(project_dir: Path | None = None) -> list[Board]:
    """Every board visible from ``project_dir``, sorted by id (earlier folders win)."""
    return [load_board(i, project_dir) for i in known_board_ids(project_dir)]


# --- parsing -----------------------------------------------------------------------------

@cache
def _schema() -> dict[str, Any]:
    text = resources.files("edgepack").joinpath("schemas/board.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def _dotted(path: list[str | int] | Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line_of(root: yaml.Node | None, path: list[str | int]) -> int | None:
    """1-based line of the YAML node at ``path`` (or of its deepest existing parent)."""
    node, line = root, None
    for part in path:
        if node is None:
            break
        line = node.start_mark.line + 1
        nxt: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value == part:
                    line, nxt = k.start_mark.line + 1, v
        elif (isinstance(node, yaml.SequenceNode) and isinstance(part, int)
              and part < len(node.value)):
            nxt = node.value[part]
        node = nxt
    if node is not None:
        line = node.start_mark.line + 1
    return line


def _load_file(path: Path) -> Board:
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise SpecError(path, f"cannot read board file: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise SpecError(path, f"not valid YAML: {getattr(exc, 'problem', exc)}",
                        line=line) from None
    if not isinstance(data, dict):
        raise SpecError(path, "a board file must be a YAML mapping")
    if data.get("schema") != BOARD_SCHEMA_VERSION:
        raise SpecError(path, f"unsupported board file schema {data.get('schema')!r} "
                        f"(this edgepack reads schema {BOARD_SCHEMA_VERSION})", field="schema",
                        line=_line_of(root, ["schema"]))
    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.path])
    if errors:
        problems = [_schema_problem(e) for e in errors]
        where, message = problems[0]
        if len(problems) > 1:
            rest = "; ".join(f"{_dotted(w) or '(top level)'}: {m}" for w, m in problems[1:])
            message += f" (and {len(problems) - 1} more: {rest})"
        raise SpecError(path, message, field=_dotted(where) or None, line=_line_of(root, where))
    _check_consistency(path, data, root)
    return _to_board(path, data)


def _schema_problem(err: jsonschema.ValidationError) -> tuple[list[str | int], str]:
    """(dotted path, message) for one schema violation, phrased for a board author."""
    where: list[str | int] = list(err.path)
    if err.validator == "additionalProperties" and isinstance(err.instance, dict):
        schema = err.schema if isinstance(err.schema, dict) else {}
        known = list(schema.get("properties", {}))
        extra = sorted(k for k in err.instance if k not in known)
        close = difflib.get_close_matches(extra[0], known, n=1) if extra else []
        hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(known)})"
        return [*where, extra[0]], f"unknown field {extra[0]!r}{hint}"
    if err.validator == "required" and isinstance(err.instance, dict):
        required = err.validator_value if isinstance(err.validator_value, list) else []
        missing = [k for k in required if k not in err.instance]
        return where, f"missing required field {missing[0]!r}"
    if err.validator == "pattern" and where[-2:] == ["console", "line"]:
        return where, ('line must be data bits 5-8, parity N, E or O and stop bits 1 or 2 '
                       '(e.g. "8N1")')
    if err.validator == "oneOf" and where and where[-1] == "ops":
        return where, 'ops must be "all" or a list of unique ONNX op types (e.g. [Conv, Relu])'
    return where, err.message


def _check_consistency(path: Path, data: dict[str, Any], root: yaml.Node | None) -> None:
    def fail(message: str, where: list[str | int]) -> None:
        raise SpecError(path, message, field=_dotted(where), line=_line_of(root, where))

    if data["id"] != path.stem:
        fail(f"id {data['id']!r} must match the file name {path.stem!r}", ["id"])
    # Fields that repeat a fact of spec/arch.py's table must agree with it.
    arch = ARCHES[data["arch"]]
    if "debian_arch" in data and data["debian_arch"] != arch.debian:
        fail(f"debian_arch {data['debian_arch']!r} does not match arch {arch.name!r} "
             f"(expected {arch.debian!r})", ["debian_arch"])
    if "qemu" in data and data["qemu"] != arch.qemu:
        fail(f"qemu {data['qemu']!r} does not run {arch.name} binaries "
             f"(expected {arch.qemu!r})", ["qemu"])
    for i, feature in enumerate(data["cpu"].get("features", [])):
        if feature not in arch.cpu_features:
            known = ", ".join(arch.cpu_features) or "none"
            fail(f"cpu feature {feature!r} does not exist on {arch.name} (known: {known})",
                 ["cpu", "features", i])
    seen: set[str] = set()
    for i, proc in enumerate(data["processors"]):
        if proc["id"] in seen:
            fail(f"duplicate processor id {proc['id']!r}", ["processors", i, "id"])
        seen.add(proc["id"])
    # Unplaced models run on "cpu", so every board needs a CPU processor by that id that
    # runs every op (it is the fallback when another processor lacks one).
    cpu = [i for i, p in enumerate(data["processors"]) if p["id"] == "cpu"]
    if not cpu:
        fail('no processor with id "cpu" (unplaced models and fallbacks run there)',
             ["processors"])
    cpu_proc = data["processors"][cpu[0]]
    if cpu_proc["kind"] != "cpu" or cpu_proc["ops"] != "all":
        fail('processor "cpu" must have kind cpu and ops "all" (it is the fallback)',
             ["processors", cpu[0]])
    if data["console"] is not None:
        con = data["console"]
        if con.get("max_baud") is not None and con["max_baud"] < con["baud"]:
            fail(f"max_baud {con['max_baud']} is below the console's baud {con['baud']}",
                 ["console", "max_baud"])
        for name in ("prompt", "login_prompt", "password_prompt", "login_failed"):
            if name not in data["console"]:
                continue
            try:
                re.compile(data["console"][name])
            except re.error as exc:
                fail(f"{name} is not a valid regular expression: {exc}", ["console", name])


def _to_board(path: Path, d: dict[str, Any]) -> Board:
    cpu = Cpu(cores=tuple(CpuCores(c["model"], c["count"], c.get("mhz"))
                          for c in d["cpu"]["cores"]),
              flags=tuple(d["cpu"]["flags"]), zig_flags=tuple(d["cpu"].get("zig_flags", ())),
              features=tuple(d["cpu"].get("features", ())))
    processors = []
    for p in d["processors"]:
        peak = p.get("peak")
        processors.append(Processor(
            id=p["id"], kind=p["kind"], name=p["name"], count=p["count"], backend=p["backend"],
            ops=None if p["ops"] == "all" else tuple(p["ops"]),
            peak=Peak(float(peak["value"]), peak["unit"], peak["dtype"]) if peak else None))
    con = d["console"]
    arch = ARCHES[d["arch"]]  # debian_arch and qemu follow from it (older files repeat them)
    return Board(
        id=d["id"], name=d["name"], soc=d["soc"], arch=d["arch"], debian_arch=arch.debian,
        cpu=cpu, toolchains=tuple(d["toolchains"]), qemu=arch.qemu, min_glibc=d["min_glibc"],
        sysroot_packages=tuple(d["sysroot_packages"]), processors=tuple(processors),
        console=Console(**con) if con else None,
        install_root=d["install"]["root"], memory_mb=d["memory_mb"],
        storage_mb=d["storage_mb"], path=path)


# --- placement ---------------------------------------------------------------------------

def check_placement(spec: Spec, board: Board,
                    ops_by_model: dict[str, list[tuple[str, str]]]) -> None:
    """Refuse a placement that puts a model on a processor lacking one of its ops.

    ``ops_by_model`` maps model name to its (op_type, node name) pairs, so this needs no ONNX.
    Models without a placement for this board run on "cpu", which runs every op.
    """
    placement = spec.placement.get(board.id, {})
    for model_name, processor_id in placement.items():
        try:
            proc = board.processor(processor_id)
        except UnknownProcessor as exc:
            raise SpecError(spec.path, exc.message,
                            field=f"placement.{board.id}.{model_name}") from None
        for op_type, node_name in ops_by_model.get(model_name, []):
            if not proc.supports(op_type):
                raise SpecError(
                    spec.path,
                    f"model {model_name!r} is placed on processor {proc.id!r} ({proc.name}) of "
                    f"board {board.id!r}, which cannot run op {op_type} (node {node_name!r})",
                    field=f"placement.{board.id}.{model_name}",
                    hint="place the model on \"cpu\", or change the model to avoid the op")

# SPDX-License-Identifier: Apache-2.0
"""Board files: the built-in boards load, lookup order, broken files, placement checks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import onnx
import pytest
from spec_project import write_valid_project

from edgepack.errors import SpecError
from edgepack.spec import boards
from edgepack.spec.arch import ARCHES, arch_facts
from edgepack.spec.boards import UnknownBoard, UnknownProcessor, check_placement, load_board
from edgepack.spec.loader import load_spec

REPO = Path(__file__).resolve().parents[2]
INVALID = REPO / "tests" / "data" / "boards_invalid"
RULES = sorted(p.stem for p in INVALID.glob("*.yaml"))
BUILTIN = ["hi3559a", "host", "jetson-nano", "jetson-orin-nano", "rpi4", "rpi4-armhf"]


def test_schema_is_a_valid_json_schema() -> None:
    schema = json.loads((REPO / "packager/edgepack/schemas/board.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)


def test_builtin_boards(tmp_path: Path) -> None:
    listed = boards.list_boards(project_dir=tmp_path)
    assert [b.id for b in listed] == BUILTIN
    for b in listed:
        assert b.path == REPO / "boards" / f"{b.id}.yaml"
        assert b.processor("cpu").ops is None and b.processor("cpu").kind == "cpu"
        assert b.sysroot_packages[:2] == ("libssl-dev", "libssl3")
        # The OpenCL ICD loader and headers exactly where a processor runs the opencl backend.
        gpu = any(p.backend == "opencl" for p in b.processors)
        assert ("ocl-icd-opencl-dev" in b.sysroot_packages) == gpu, b.id


def test_hi3559a_facts(tmp_path: Path) -> None:
    b = load_board("hi3559a", project_dir=tmp_path)
    assert (b.arch, b.debian_arch, b.qemu) == ("aarch64", "arm64", "qemu-aarch64")
    assert b.cpu.flags == ("-mcpu=cortex-a73.cortex-a53",)
    assert [(c.model, c.count) for c in b.cpu.cores] == [("cortex-a73", 2), ("cortex-a53", 2)]
    assert b.toolchains == ("aarch64-himix100-linux", "aarch64-linux-gnu")
    assert [(p.id, p.kind, p.backend, p.count) for p in b.processors] == [
        ("cpu", "cpu", "cpu", 4), ("gpu", "gpu", "opencl", 1), ("dsp", "dsp", "vp6", 4),
        ("npu", "npu", "nnie", 2)]
    npu = b.processor("npu")
    assert npu.supports("Conv") and npu.supports("MaxPool")
    assert not npu.supports("NonMaxSuppression")
    assert b.console is not None and b.console.baud == 115200
    assert b.install_root == "/opt/edgepack"


@pytest.mark.parametrize(("board_id", "arch", "triple", "flags", "qemu"), [
    ("rpi4", "aarch64", "aarch64-linux-gnu", ("-mcpu=cortex-a72",), "qemu-aarch64"),
    ("rpi4-armhf", "armhf", "arm-linux-gnueabihf",
     ("-mcpu=cortex-a72", "-mfpu=neon-fp-armv8", "-mfloat-abi=hard"), "qemu-arm"),
    ("jetson-nano", "aarch64", "aarch64-linux-gnu", ("-mcpu=cortex-a57",), "qemu-aarch64"),
    ("jetson-orin-nano", "aarch64", "aarch64-linux-gnu", ("-mcpu=cortex-a78ae",),
     "qemu-aarch64"),
    ("host", "x86_64", "x86_64-linux-gnu", (), None),
])
def test_board_toolchain_facts(board_id: str, arch: str, triple: str, flags: tuple[str, ...],
                               qemu: str | None, tmp_path: Path) -> None:
    b = load_board(board_id, project_dir=tmp_path)
    assert (b.arch, b.toolchains[0], b.cpu.flags, b.qemu) == (arch, triple, flags, qemu)


def test_jetson_gpu_uses_tensorrt(tmp_path: Path) -> None:
    for board_id in ("jetson-nano", "jetson-orin-nano"):
        gpu = load_board(board_id, project_dir=tmp_path).processor("gpu")
        assert (gpu.kind, gpu.backend) == ("gpu", "tensorrt")


def test_unknown_board_lists_known_ids(tmp_path: Path) -> None:
    with pytest.raises(UnknownBoard) as info:
        load_board("hi3516", project_dir=tmp_path)
    assert "hi3516" in str(info.value)
    for board_id in BUILTIN:
        assert board_id in str(info.value)


def test_unknown_processor_lists_known_ids(tmp_path: Path) -> None:
    with pytest.raises(UnknownProcessor, match=r"'tpu' \(known: cpu, gpu, dsp, npu\)"):
        load_board("hi3559a", project_dir=tmp_path).processor("tpu")


def _custom_board(folder: Path, board_id: str, name: str) -> Path:
    text = (REPO / "boards" / "rpi4.yaml").read_text()
    text = text.replace("id: rpi4\n", f"id: {board_id}\n").replace(
        "name: Raspberry Pi 4 Model B (64-bit OS)", f"name: {name}")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{board_id}.yaml"
    path.write_text(text)
    return path


def test_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "project"
    extra = tmp_path / "extra"
    _custom_board(project / "boards", "rpi4", "project rpi4")
    _custom_board(extra, "rpi4", "env rpi4")
    _custom_board(extra, "my-board", "env board")
    monkeypatch.setenv(boards.BOARDS_PATH_ENV, str(extra))
    assert load_board("rpi4", project_dir=project).name == "project rpi4"
    assert load_board("rpi4", project_dir=tmp_path).name == "env rpi4"
    assert load_board("my-board", project_dir=tmp_path).name == "env board"
    assert load_board("hi3559a", project_dir=project).path == REPO / "boards" / "hi3559a.yaml"
    ids = [b.id for b in boards.list_boards(project_dir=project)]
    assert ids == sorted([*BUILTIN, "my-board"])
    monkeypatch.delenv(boards.BOARDS_PATH_ENV)
    with pytest.raises(UnknownBoard):
        load_board("my-board", project_dir=tmp_path)


def test_load_by_path(tmp_path: Path) -> None:
    path = _custom_board(tmp_path / "anywhere", "lab-pi", "lab pi")
    assert load_board(path).name == "lab pi"
    assert load_board(str(path)).id == "lab-pi"
    with pytest.raises(UnknownBoard, match="does not exist"):
        load_board(tmp_path / "missing.yaml")


def test_every_rule_has_a_file() -> None:
    assert len(RULES) >= 8


@pytest.mark.parametrize("rule", RULES)
def test_invalid_board(rule: str, tmp_path: Path) -> None:
    path = tmp_path / f"{rule}.yaml"
    shutil.copy(INVALID / f"{rule}.yaml", path)
    with pytest.raises(SpecError) as info:
        load_board(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    expected = [s for s in (INVALID / f"{rule}.expected").read_text().splitlines() if s]
    assert expected
    for substring in expected:
        assert substring in message, f"{rule}: {substring!r} not in {message!r}"


def _ops(path: Path) -> list[tuple[str, str]]:
    model = onnx.load(str(path), load_external_data=False)
    return [(n.op_type, n.name) for n in model.graph.node]


def test_check_placement(tmp_path: Path) -> None:
    spec = load_spec(write_valid_project(tmp_path))
    board = load_board("hi3559a", project_dir=tmp_path)
    ops = {m.name: _ops(m.path) for m in spec.models}
    check_placement(spec, board, ops)  # detector (Conv, Reshape, Transpose) fits the NNIE
    ops["detector"].append(("NonMaxSuppression", "nms_0"))
    ops["classifier"].append(("TopK", "topk_0"))  # classifier is unplaced: runs on cpu
    with pytest.raises(SpecError) as info:
        check_placement(spec, board, ops)
    message = str(info.value)
    for part in ("NonMaxSuppression", "'nms_0'", "'detector'", "'npu'", "'hi3559a'",
                 "placement.hi3559a.detector"):
        assert part in message, message
    # The placement belongs to hi3559a only; on another board everything runs on cpu.
    check_placement(spec, load_board("rpi4", project_dir=tmp_path), ops)


def test_mistyped_board_id_gets_a_suggestion(tmp_path: Path) -> None:
    with pytest.raises(UnknownBoard, match=r"unknown board 'rpi-4'; did you mean 'rpi4'\?"):
        load_board("rpi-4", project_dir=tmp_path)
    with pytest.raises(UnknownBoard) as info:
        load_board("stm32", project_dir=tmp_path)
    assert "did you mean" not in str(info.value)


def test_console_fields_and_defaults(tmp_path: Path) -> None:
    hi = load_board("hi3559a", project_dir=tmp_path).console
    assert hi is not None
    assert (hi.baud, hi.login, hi.prompt, hi.line, hi.flow) == (115200, "root", "[#$] ?$", "8N1",
                                                                "none")
    assert (hi.bytesize, hi.parity, hi.stopbits, hi.bits_per_byte) == (8, "N", 1, 10)
    assert hi.max_baud == 921_600  # the agent's frames switch to it (BAUD)
    assert load_board("host", project_dir=tmp_path).console is None
    text = (REPO / "boards" / "rpi4.yaml").read_text().replace("id: rpi4", "id: lab-uart")
    text = text.replace("  login: pi\n", "  login: null\n  line: 7E2\n  flow: rtscts\n"
                        "  login_prompt: 'Username: ?$'\n  login_timeout_s: 5\n")
    (tmp_path / "boards").mkdir()
    (tmp_path / "boards" / "lab-uart.yaml").write_text(text)
    con = load_board("lab-uart", project_dir=tmp_path).console
    assert con is not None
    assert (con.login, con.line, con.flow, con.login_prompt, con.login_timeout_s) == (
        None, "7E2", "rtscts", "Username: ?$", 5)
    assert (con.bytesize, con.parity, con.stopbits, con.bits_per_byte) == (7, "E", 2, 11)
    assert con.password_prompt == boards.DEFAULT_CONSOLE.password_prompt  # not given: default
    assert con.max_baud is None  # not given: the line stays at baud


def test_arch_facts_come_from_one_table(tmp_path: Path) -> None:
    # debian_arch and qemu follow from arch; a board file that repeats them must agree.
    text = (REPO / "boards" / "rpi4.yaml").read_text().replace("id: rpi4", "id: old-style")
    assert "debian_arch" not in text and "qemu" not in text
    (tmp_path / "old-style.yaml").write_text(text.replace(
        "arch: aarch64\n", "arch: aarch64\ndebian_arch: arm64\nqemu: qemu-aarch64\n"))
    b = load_board(tmp_path / "old-style.yaml")
    facts = arch_facts(b.arch)
    assert (b.debian_arch, b.qemu) == (facts.debian, facts.qemu) == ("arm64", "qemu-aarch64")
    for name, facts in ARCHES.items():
        assert arch_facts(facts.debian) is facts and all(arch_facts(u) is facts
                                                          for u in facts.uname)
        assert facts.name == name and facts.elf_bits in (32, 64)
    with pytest.raises(KeyError, match="unknown architecture 'mips'"):
        arch_facts("mips")

# SPDX-License-Identifier: Apache-2.0
"""Toolchain resolution: vendor first when present, else zig against the board's min_glibc (with
a warning when a vendor compiler was skipped), a clear error when nothing can build a board; a
board build whose binaries need too new a glibc is refused."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from edgepack.build import qemu
from edgepack.build.sdkbuild import build_sdk, cmake_program
from edgepack.build.sdkreadme import sdk_toolchain_files
from edgepack.build.shipcheck import GlibcTooNew
from edgepack.build.toolchains import (
    is_vendor_triple,
    resolve_toolchain,
    toolchain_file,
    toolchains_dir,
)
from edgepack.cli import main
from edgepack.errors import ExitCode, ToolchainError
from edgepack.spec.boards import list_boards, load_board


def _vendor_shim(folder: Path) -> Path:
    """A real compiler under the vendor's name: scripts that exec Debian's aarch64 GCC."""
    folder.mkdir(parents=True, exist_ok=True)
    for tool, real in (("g++", "aarch64-linux-gnu-g++"), ("gcc", "aarch64-linux-gnu-gcc")):
        shim = folder / f"aarch64-himix100-linux-{tool}"
        target = shutil.which(real)
        assert target, f"{real} missing: apt-get install g++-aarch64-linux-gnu"
        shim.write_text(f'#!/bin/sh\nexec "{target}" "$@"\n')
        shim.chmod(0o755)
    return folder


def test_vendor_compiler_on_path_is_chosen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shim = _vendor_shim(tmp_path / "vendor-bin")
    monkeypatch.setenv("PATH", f"{shim}{os.pathsep}{os.environ['PATH']}")
    tc = resolve_toolchain(load_board("hi3559a"))
    assert tc.triple == "aarch64-himix100-linux"
    assert tc.vendor and tc.warning is None
    assert tc.cxx == str(shim / "aarch64-himix100-linux-g++")
    assert tc.file.name == "aarch64-himix100-linux.toolchain.cmake"
    assert tc.version.split(".")[0].isdigit()


def test_vendor_toolchain_file_builds_and_runs(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The vendor toolchain file compiles with the vendor-named compiler for the board's CPU."""
    shim = _vendor_shim(tmp_path / "vendor-bin")
    monkeypatch.setenv("PATH", f"{shim}{os.pathsep}{os.environ['PATH']}")
    src = tmp_path / "src"
    src.mkdir()
    (src / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.20)\nproject(hello CXX)\n"
        "add_executable(hello hello.cpp)\n"
        "target_link_options(hello PRIVATE -static)\n")
    (src / "hello.cpp").write_text(
        '#include <cstdio>\nint main() { std::printf("hello %d\\n", 6 * 7); return 0; }\n')
    board = load_board("hi3559a")
    build = tmp_path / "b"
    done = subprocess.run(
        [cmake_program(), "-S", str(src), "-B", str(build), "-G", "Ninja",
         f"-DCMAKE_TOOLCHAIN_FILE={toolchain_file('aarch64-himix100-linux')}",
         f"-DEDGEPACK_ARCH_FLAGS={' '.join(board.cpu.flags)}"],
        capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    done = subprocess.run([cmake_program(), "--build", str(build), "-v"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "-mcpu=cortex-a73.cortex-a53" in done.stdout
    assert "aarch64-himix100-linux-g++" in done.stdout  # compiled by the vendor-named compiler
    ran = qemu.run(board, [build / "hello"])
    assert ran.returncode == 0 and ran.stdout == b"hello 42\n"


@pytest.mark.parametrize(("board_id", "target"), [("hi3559a", "aarch64-linux-gnu.2.24"),
                                                  ("jetson-nano", "aarch64-linux-gnu.2.27"),
                                                  ("rpi4", "aarch64-linux-gnu.2.31"),
                                                  ("rpi4-armhf", "arm-linux-gnueabihf.2.31")])
def test_generic_triples_build_with_zig_for_min_glibc(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       board_id: str, target: str) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH: zig comes from ziglang
    b = load_board(board_id)
    tc = resolve_toolchain(b)
    assert tc.kind == "zig" and tc.zig_target == target and not tc.vendor
    assert tc.file == toolchain_file("zig") and tc.arch_flags == b.cpu.zig_flags
    assert f"-DEDGEPACK_ZIG_TARGET={target}" in tc.cmake_args()
    assert tc.cmake_args(static=True)[-1].endswith("-musl") or "musleabihf" in \
        tc.cmake_args(static=True)[-1]
    if board_id == "hi3559a":
        assert tc.warning == (
            "vendor toolchain aarch64-himix100-linux-g++ not on PATH; using zig "
            "(aarch64-linux-gnu.2.24) (same ABI) — install the HiSilicon SDK to use the vendor "
            "compiler")
    else:
        assert tc.warning is None


def test_vendor_only_board_without_its_compiler_names_the_sdk(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (toolchains_dir().parent / "boards" / "hi3559a.yaml").read_text().replace(
        "toolchains: [aarch64-himix100-linux, aarch64-linux-gnu]",
        "toolchains: [aarch64-himix100-linux]").replace("id: hi3559a", "id: vendor-only")
    (tmp_path / "vendor-only.yaml").write_text(text)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolchainError) as err:
        resolve_toolchain(load_board(str(tmp_path / "vendor-only.yaml")))
    assert "vendor-only" in str(err.value) and "HiSilicon SDK" in str(err.value)


def test_every_board_has_its_toolchain_files() -> None:
    for board in list_boards():
        tc = resolve_toolchain(board)
        assert tc.file.is_file()
        for triple in board.toolchains:
            if is_vendor_triple(triple):
                assert toolchain_file(triple).is_file()


def test_the_sdk_ships_what_its_toolchain_file_includes(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every cross toolchain file (vendor, Debian, zig) ends in the shared linux-cross.cmake, and
    the SDK's cmake/ folder carries it beside the file that includes it."""
    included = re.compile(r"include\(\$\{CMAKE_CURRENT_LIST_DIR\}/([^)]+)\)")
    for path in sorted(toolchains_dir().glob("*.toolchain.cmake")):
        names = included.findall(path.read_text())
        assert names == ([] if path.name == "host.toolchain.cmake" else ["linux-cross.cmake"]), \
            path.name
    shim = _vendor_shim(tmp_path / "vendor-bin")
    board = load_board("hi3559a")
    zig = resolve_toolchain(board)
    monkeypatch.setenv("PATH", f"{shim}{os.pathsep}{os.environ['PATH']}")
    for tc in (zig, resolve_toolchain(board)):  # zig, then the vendor compiler
        files = sdk_toolchain_files(board, tc)
        base = files[f"cmake/{tc.file.name}"]
        for name in included.findall(base):
            assert files[f"cmake/{name}"] == (tc.file.parent / name).read_text(), tc.file.name


def test_too_new_glibc_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    """A board whose C library is older than what its compiler links against: Debian's GCC
    (glibc 2.36) under a vendor name for a board with min_glibc 2.24. The build stops with
    one error line naming the binary, the version it needs and the board's, and ships
    nothing."""
    shim = _vendor_shim(tmp_path / "vendor-bin")
    monkeypatch.setenv("PATH", f"{shim}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("EDGEPACK_CACHE", str(tmp_path / "cache"))
    text = (toolchains_dir().parent / "boards" / "hi3559a.yaml").read_text().replace(
        "id: hi3559a", "id: old-libc")
    board_file = tmp_path / "old-libc.yaml"
    board_file.write_text(text)
    src = tmp_path / "src"
    src.mkdir()
    (src / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.20)\nproject(hello CXX)\n"
        "add_executable(hello hello.cpp)\ninstall(TARGETS hello RUNTIME DESTINATION bin)\n")
    (src / "hello.cpp").write_text('#include <cstdio>\nint main() { std::puts("hi"); }\n')
    out = tmp_path / "out"
    with pytest.raises(GlibcTooNew) as err:
        build_sdk(load_board(str(board_file)), out, sdk_source=src, agent_source=None,
                  cache=tmp_path / "cache")
    message = str(err.value)
    assert "board old-libc has glibc 2.24" in message and str(board_file) in message
    assert re.search(r"bin/hello needs GLIBC_2\.3[4-9]", message), message
    assert list(out.iterdir()) == []  # nothing shipped


def test_doctor_reports_vendor_compiler_as_optional(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["doctor", "--board", "hi3559a", "--json"])
    data = json.loads(capsys.readouterr().out)
    by_name = {c["name"]: c for c in data["checks"]}
    vendor = by_name["aarch64-himix100-linux-g++ (hi3559a)"]
    assert not vendor["ok"] and not vendor["required"] and "HiSilicon SDK" in vendor["fix"]
    assert by_name["zig aarch64-linux-gnu.2.24 (hi3559a)"]["ok"]
    assert by_name["aarch64-linux-gnu-objcopy (hi3559a)"]["ok"]
    assert by_name["qemu-aarch64"]["ok"]
    assert {"cmake", "ninja", "conan", "sshd", "socat"} <= set(by_name)
    assert code == (ExitCode.OK if data["ok"] else ExitCode.CHECK_FAILED)


def test_doctor_names_install_command_for_missing_tools(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    code = main(["doctor", "--board", "rpi4-armhf"])
    out = capsys.readouterr().out
    assert code == ExitCode.CHECK_FAILED
    assert "apt-get install binutils-arm-linux-gnueabihf" in out
    assert "apt-get install socat" in out

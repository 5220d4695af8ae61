# SPDX-License-Identifier: Apache-2.0
"""Toolchain resolution: vendor first when present, generic fallback with a warning, a clear
error naming the Debian package when nothing is installed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from edgepack.build import qemu
from edgepack.build.sdkbuild import cmake_program
from edgepack.build.toolchains import resolve_toolchain, toolchain_file, toolchains_dir
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


def test_generic_fallback_warns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A PATH holding only the generic compilers (no vendor one anywhere).
    only = tmp_path / "generic-bin"
    only.mkdir()
    for name in ("aarch64-linux-gnu-g++", "aarch64-linux-gnu-gcc"):
        real = shutil.which(name)
        assert real, "apt-get install g++-aarch64-linux-gnu"
        (only / name).symlink_to(real)
    monkeypatch.setenv("PATH", str(only))
    tc = resolve_toolchain(load_board("hi3559a"))
    assert tc.triple == "aarch64-linux-gnu" and not tc.vendor
    assert tc.warning == (
        "vendor toolchain aarch64-himix100-linux-g++ not on PATH; using aarch64-linux-gnu-g++ "
        "(same ABI) — install the HiSilicon SDK to use the vendor compiler")


@pytest.mark.parametrize(("board_id", "package"), [("rpi4", "g++-aarch64-linux-gnu"),
                                                   ("rpi4-armhf", "g++-arm-linux-gnueabihf"),
                                                   ("hi3559a", "g++-aarch64-linux-gnu")])
def test_missing_toolchain_names_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             board_id: str, package: str) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing at all on PATH
    with pytest.raises(ToolchainError) as err:
        resolve_toolchain(load_board(board_id))
    text = str(err.value)
    assert f"apt-get install {package}" in text
    assert board_id in text


def test_every_board_has_toolchain_files_and_a_conan_profile() -> None:
    for board in list_boards():
        for triple in board.toolchains:
            assert toolchain_file(triple).is_file()
        profile = toolchains_dir() / "conan" / board.id
        assert profile.is_file(), f"missing Conan profile {profile}"
        text = profile.read_text()
        for flag in board.cpu.flags:  # the profile's flags must mirror the board file
            assert flag in text, f"{profile}: {flag} (from {board.path}) missing"


def test_doctor_reports_vendor_compiler_as_optional(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["doctor", "--board", "hi3559a", "--json"])
    data = json.loads(capsys.readouterr().out)
    by_name = {c["name"]: c for c in data["checks"]}
    vendor = by_name["aarch64-himix100-linux-g++ (hi3559a)"]
    assert not vendor["ok"] and not vendor["required"] and "HiSilicon SDK" in vendor["fix"]
    assert by_name["aarch64-linux-gnu-g++ (hi3559a)"]["ok"]
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
    assert "apt-get install g++-arm-linux-gnueabihf" in out
    assert "apt-get install socat" in out

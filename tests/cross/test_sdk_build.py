# SPDX-License-Identifier: Apache-2.0
"""``edgepack sdk build`` for the ARM boards: ELF checks (architecture, the glibc each shipped
binary needs against the board's ``min_glibc``, stripped with debug info kept on the host), the
runner and the agent under qemu, the SDK tarball used the way its README says, Ninja no-op
rebuilds, compiler errors and unknown boards."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import ARM_BOARDS, CROSS_ROOT, REPO, board, clean_env
from edgepack.build import qemu
from edgepack.build.elfinfo import (
    read_elf,
    required_glibc,
    required_glibcxx,
    version_key,
)
from edgepack.build.sdkbuild import SdkBuild, build_sdk, cmake_program, zig_cache
from edgepack.build.toolchains import resolve_toolchain
from edgepack.cli import main
from edgepack.device.client import AgentClient, sha256_file
from edgepack.device.pipes import PipeStream
from edgepack.errors import ToolchainError
from edgepack.spec.arch import EM_AARCH64, EM_ARM

EXPECTED = {"hi3559a": (EM_AARCH64, 64), "rpi4": (EM_AARCH64, 64), "rpi4-armhf": (EM_ARM, 32)}
GUEST_MACHINE = {"hi3559a": "aarch64", "rpi4": "aarch64", "rpi4-armhf": "armv7l"}
CONSUMER = REPO / "sdk_templates" / "examples" / "conan_consumer"


def _needed(path: Path) -> list[str]:
    out = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True,
                         check=True).stdout
    return [ln.split("[")[1].rstrip("]") for ln in out.splitlines() if "(NEEDED)" in ln]


@pytest.mark.parametrize("board_id", ARM_BOARDS)
def test_sdk_tree_and_elf_headers(sdk_for: Callable[[str], SdkBuild], board_id: str) -> None:
    sdk = sdk_for(board_id)
    tree = sdk.sdk_dir
    assert tree == CROSS_ROOT / "sdk" / board_id
    for rel in ("include/edgepack.h", "lib/cmake/edgepack/edgepackConfig.cmake",
                "bin/edgepack-run", "BUILDINFO.json", "README.md"):
        assert (tree / rel).is_file(), rel
    shared = sorted((tree / "lib").glob("libedgepack.so*"))
    static = sorted((tree / "lib").glob("libedgepack*.a"))
    assert shared and static
    machine, bits = EXPECTED[board_id]
    for binary in (tree / "bin" / "edgepack-run", shared[0]):
        elf = read_elf(binary)
        assert (elf.machine, elf.bits) == (machine, bits), binary
        if board_id == "rpi4-armhf":
            assert elf.hard_float, f"{binary}: EF_ARM_ABI_FLOAT_HARD not set"
        # libcrypto and the C++ library are linked in, not needed at run time on the board.
        assert not any("libcrypto" in n or "libstdc++" in n or "libc++" in n
                       for n in _needed(binary)), binary
    b = board(board_id)
    plugin = tree / "lib" / "libedgepack_opencl.so"
    if any(p.backend == "opencl" for p in b.processors):
        # A board with an OpenCL GPU gets the backend plugin, linked against the ICD loader of
        # its Debian sysroot (the board's own libOpenCL / libmali answers at run time).
        elf = read_elf(plugin)
        assert (elf.machine, elf.bits) == (machine, bits)
        needed = _needed(plugin)
        assert "libOpenCL.so.1" in needed and not any("libc++" in n for n in needed), needed
    else:
        assert not plugin.exists(), "no OpenCL processor on this board, no plugin"
    info = json.loads((tree / "BUILDINFO.json").read_text())
    assert info["board"] == board_id
    assert info["flags"] == list(resolve_toolchain(b).arch_flags)
    assert info["toolchain"]["triple"] == resolve_toolchain(b).triple
    assert info["sysroot"]["packages"].keys() == set(b.sysroot_packages)
    assert info["sdk_abi"] is not None and len(info["source_hash"]["sdk_templates"]) == 64
    with tarfile.open(sdk.tarball) as tar:
        names = set(tar.getnames())
    top = sdk.tarball.name.removesuffix(".tar.gz")
    for rel in ("bin/edgepack-run", "BUILDINFO.json", "toolchain.cmake", "examples/app/main.cpp"):
        assert f"{top}/{rel}" in names, rel
    assert not any(n.endswith(".debug") for n in names)


def _readelf(args: list[str], path: Path) -> str:
    return subprocess.run(["readelf", "-W", *args, str(path)], capture_output=True, text=True,
                          check=True).stdout


@pytest.mark.parametrize("board_id", ARM_BOARDS)
def test_shipped_binaries_load_on_the_boards_glibc(sdk_for: Callable[[str], SdkBuild],
                                                   board_id: str) -> None:
    """Every shipped binary needs at most the board's min_glibc and no shared libstdc++ (read
    here with readelf, independently of the build's own check), and BUILDINFO says so."""
    sdk = sdk_for(board_id)
    b = board(board_id)
    shipped = [p for p in sorted((sdk.sdk_dir / "bin").iterdir())] + \
        sorted((sdk.sdk_dir / "lib").glob("*.so*"))
    assert {p.name for p in shipped} >= {"edgepack-run", "edgepack-agent", "libedgepack.so"}
    highest: list[str] = []
    for path in shipped:
        versions = _readelf(["-V"], path)
        glibc = sorted(set(re.findall(r"GLIBC_([0-9.]+)", versions)), key=version_key)
        assert "GLIBCXX_" not in versions and required_glibcxx([path]) is None, path
        if glibc:
            assert version_key(glibc[-1]) <= version_key(b.min_glibc), (path, glibc[-1])
            highest.append(glibc[-1])
        assert required_glibc([path]) == (glibc[-1] if glibc else None), path
    info = sdk.buildinfo["glibc"]
    assert info["min_glibc"] == b.min_glibc
    assert info["required_glibc"] == max(highest, key=version_key)
    # The agent is fully static: it loads on any C library.
    assert read_elf(sdk.sdk_dir / "bin" / "edgepack-agent").static


@pytest.mark.parametrize("board_id", ARM_BOARDS)
def test_shipped_binaries_are_stripped_debug_kept(sdk_for: Callable[[str], SdkBuild],
                                                  board_id: str) -> None:
    sdk = sdk_for(board_id)
    debug_dir = sdk.sdk_dir.parent / f"{board_id}.debug"
    sizes = sdk.buildinfo["sizes"]
    for name in ("bin/edgepack-run", "bin/edgepack-agent", "lib/libedgepack.so"):
        path = (sdk.sdk_dir / name).resolve()  # the library's real file behind its symlinks
        rel = str(path.relative_to(sdk.sdk_dir.resolve()))
        sections = _readelf(["-S"], path)
        assert ".debug_info" not in sections and ".symtab" not in sections, rel
        assert ".gnu_debuglink" in sections, rel
        debug = debug_dir / f"{rel}.debug"
        assert ".debug_info" in _readelf(["-S"], debug), debug
        assert sizes[rel]["after"] == path.stat().st_size < sizes[rel]["before"], rel
    # libedgepack.so still exports the C API (and only that).
    exported = _readelf(["--dyn-syms"], sdk.sdk_dir / "lib" / "libedgepack.so")
    names = {ln.split()[-1].split("@")[0] for ln in exported.splitlines()
             if " GLOBAL " in ln and " UND " not in ln}
    assert names and all(n.startswith("ep_") for n in names), sorted(names)[:10]


@pytest.mark.parametrize("board_id", ARM_BOARDS)
def test_runner_runs_under_qemu(sdk_for: Callable[[str], SdkBuild], board_id: str) -> None:
    sdk = sdk_for(board_id)
    for flag in ("--version", "--help"):
        done = qemu.run(board(board_id), [sdk.sdk_dir / "bin" / "edgepack-run", flag])
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        assert done.stdout or done.stderr
    version = qemu.run(board(board_id), [sdk.sdk_dir / "bin" / "edgepack-run", "--version"])
    assert sdk.buildinfo["sdk_version"].encode() in version.stdout + version.stderr


def _app_env() -> dict[str, str]:
    """What a user with the SDK has: cmake and a python with ziglang on PATH (the virtual
    environment's bin folder, which holds both), and zig's cache already holding its libc++ for
    the board (as after the user's first app build; here the cache the SDK build filled, which
    saves a cold libc++ build per board and test session)."""
    tools = os.path.dirname(sys.executable)
    return {**clean_env(), "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}",
            "ZIG_GLOBAL_CACHE_DIR": str(zig_cache(Path(os.environ["EDGEPACK_CACHE"])))}


def _readme_commands(readme: str) -> str:
    block = readme.split("## Build the example app", 1)[1].split("```sh\n", 1)[1]
    return block.split("```", 1)[0]


@pytest.mark.parametrize("board_id", ["rpi4-armhf", "hi3559a"])
def test_readme_builds_example_from_tarball_alone(sdk_for: Callable[[str], SdkBuild],
                                                  tmp_path: Path, board_id: str) -> None:
    """The tarball copied to an empty folder, the README's commands run as written (no
    edgepack checkout, no sysroot), and the app it builds runs under qemu."""
    sdk = sdk_for(board_id)
    work = tmp_path / "user"
    work.mkdir()
    shutil.copy2(sdk.tarball, work)
    commands = _readme_commands((sdk.sdk_dir / "README.md").read_text())
    assert "tar xzf" in commands and "toolchain.cmake" in commands
    done = subprocess.run(["bash", "-euxc", commands],
                          cwd=work, capture_output=True, text=True, env=_app_env())
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    app = work / "build-app" / "example_app"
    assert read_elf(app).machine == EXPECTED[board_id][0]
    b = board(board_id)
    need = required_glibc([app])
    assert need is None or version_key(need) <= version_key(b.min_glibc)
    ran = qemu.run(b, [app])  # no arguments: it prints its usage (it loaded and ran)
    assert ran.returncode == 2 and b"usage: example_app" in ran.stderr


def test_sdk_refuses_a_consumer_of_another_architecture(sdk_for: Callable[[str], SdkBuild],
                                                        tmp_path: Path) -> None:
    sdk = sdk_for("hi3559a")
    done = subprocess.run(
        [cmake_program(), "-S", str(CONSUMER), "-B", str(tmp_path / "host-app"),
         f"-DCMAKE_PREFIX_PATH={sdk.sdk_dir}"], capture_output=True, text=True, env=_app_env())
    assert done.returncode != 0
    text = " ".join((done.stdout + done.stderr).split())
    assert "is built for Linux aarch64" in text and "targets x86_64" in text, text[-2000:]
    assert f"-DCMAKE_TOOLCHAIN_FILE={sdk.sdk_dir}/toolchain.cmake" in text


@pytest.mark.parametrize("board_id", ["rpi4-armhf", "hi3559a"])
def test_app_against_installed_sdk(sdk_for: Callable[[str], SdkBuild], tmp_path: Path,
                                   board_id: str) -> None:
    """find_package(edgepack) from the unpacked SDK with its own toolchain file, run under
    qemu (the shared library this time)."""
    sdk = sdk_for(board_id)
    b = board(board_id)
    build = tmp_path / "app"
    configure = subprocess.run(
        [cmake_program(), "-S", str(CONSUMER), "-B", str(build), "-G", "Ninja",
         f"-DCMAKE_TOOLCHAIN_FILE={sdk.sdk_dir / 'toolchain.cmake'}",
         f"-DCMAKE_PREFIX_PATH={sdk.sdk_dir}"],
        capture_output=True, text=True, env=_app_env())
    assert configure.returncode == 0, configure.stdout[-3000:] + configure.stderr[-3000:]
    compiled = subprocess.run([cmake_program(), "--build", str(build)], capture_output=True,
                              text=True, env=_app_env())
    assert compiled.returncode == 0, compiled.stdout[-3000:]
    app = build / "edgepack_consumer"
    assert read_elf(app).machine == EXPECTED[board_id][0]
    done = qemu.run(b, [app])
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert done.stdout.decode().startswith(f"edgepack {sdk.buildinfo['sdk_version']}")


def test_second_build_compiles_nothing(sdk_for: Callable[[str], SdkBuild],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    first = sdk_for("hi3559a")
    argv = ["sdk", "build", "--board", "hi3559a", "--out", str(CROSS_ROOT / "sdk"), "--json"]
    # Brings the build folder up to date with the sources as they are now: the session build
    # may be minutes old, and a source edited since then is rightly compiled again.
    assert main(argv) == 0
    capsys.readouterr()
    objects = {p: p.stat().st_mtime_ns for p in first.projects[0].build_dir.rglob("*.o")}
    assert objects
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["compiled"] is False
    assert "ninja: no work to do." in first.projects[0].log.read_text()
    assert {p: p.stat().st_mtime_ns for p in objects} == objects
    assert (CROSS_ROOT / "sdk" / "hi3559a" / "bin" / "edgepack-run").is_file()


def test_compiler_error_reports_command_and_keeps_log(cross_cache: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(ToolchainError) as err:
        build_sdk("hi3559a", out, cache=cross_cache, agent_source=None,
                  sdk_source=Path(__file__).parent / "data" / "broken_sdk")
    text = str(err.value)
    assert "build of sdk for hi3559a failed" in text
    assert "zig-aarch64-linux-gnu.2.24/c++" in text and "broken.cpp" in text  # the command
    assert "undeclared_edgepack_symbol" in text and "error" in text  # first error lines
    log = Path(text.split("build log: ")[1].strip())
    assert log.is_file() and "undeclared_edgepack_symbol" in log.read_text()
    assert list(out.iterdir()) == []  # no half-written SDK or tarball


def test_unknown_board_lists_known_ones(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["sdk", "build", "--board", "no-such-board", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code != 0
    assert "no-such-board" in err and "rpi4" in err and "hi3559a" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("board_id", ARM_BOARDS)
def test_agent_under_qemu_answers_and_stores(sdk_for: Callable[[str], SdkBuild], tmp_path: Path,
                                             board_id: str) -> None:
    """The board's edgepack-agent over stdio: HELLO with the guest's facts, then a file put,
    installed and read back."""
    agent_bin = sdk_for(board_id).sdk_dir / "bin" / "edgepack-agent"
    assert read_elf(agent_bin).machine == EXPECTED[board_id][0]
    argv, extra = qemu.command_for(board(board_id), [agent_bin, "--root", tmp_path / "root"])
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**clean_env(), **extra})
    try:
        client = AgentClient(PipeStream(proc), timeout=60)
        hello = client.hello()
        assert hello.protocol == 1
        assert hello.agent_sha256 == sha256_file(agent_bin)
        assert hello.facts["machine"] == GUEST_MACHINE[board_id]
        payload = os.urandom(3000)
        put = client.put_bytes(payload)
        client.install(put.sha256, "data/blob.bin")
        assert client.get("data/blob.bin") == payload
        assert (tmp_path / "root" / "data" / "blob.bin").read_bytes() == payload
        client.bye()
    finally:
        proc.kill()
        proc.wait(timeout=30)
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()

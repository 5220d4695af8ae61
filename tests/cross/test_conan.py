# SPDX-License-Identifier: Apache-2.0
"""The SDK as a Conan 2 package for hi3559a, created and consumed offline in an isolated home with
the profile generated from the board file; both CMake targets, and a project-local board."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from conftest import REPO, board
from edgepack.build import qemu
from edgepack.build.conanpkg import (
    conan_env,
    create_package,
    render_profile,
    run_conan,
    sdk_version,
    write_profile,
)
from edgepack.build.elfinfo import read_elf
from edgepack.build.sdkbuild import cmake_program
from edgepack.build.toolchains import resolve_toolchain
from edgepack.spec.arch import EM_AARCH64
from edgepack.spec.boards import list_boards, load_board


def _consume(consumer: Path, profile: Path, env: dict[str, str]) -> Path:
    run_conan(["install", str(consumer), "-pr:h", str(profile), "-pr:b", "default",
               "--build=never", "--no-remote"], env, "conan install", cwd=consumer)
    generated = consumer / "build" / "Release" / "generators"
    build = consumer / "build" / "Release"
    configure = subprocess.run(
        [cmake_program(), "-S", str(consumer), "-B", str(build), "-G", "Ninja",
         f"-DCMAKE_TOOLCHAIN_FILE={generated / 'conan_toolchain.cmake'}",
         "-DCMAKE_BUILD_TYPE=Release"], capture_output=True, text=True, env=env)
    assert configure.returncode == 0, configure.stdout[-3000:] + configure.stderr[-3000:]
    compiled = subprocess.run([cmake_program(), "--build", str(build)], capture_output=True,
                              text=True, env=env)
    assert compiled.returncode == 0, compiled.stdout[-3000:]
    return build / "edgepack_consumer"


def test_conan_create_and_consume_hi3559a(cross_cache: Path, tmp_path: Path) -> None:
    home = tmp_path / "conan-home"
    result = create_package("hi3559a", conan_home=home, cache=cross_cache)
    assert result["reference"] == f"edgepack-sdk/{sdk_version()}"
    profile = Path(result["profile"])
    assert profile.is_relative_to(cross_cache)  # generated, not a file of the checkout
    env = conan_env(Path(result["sysroot"]["path"]), home)
    for target in ("edgepack::edgepack", "edgepack::edgepack_static"):
        consumer = tmp_path / target.replace("::", "-")
        shutil.copytree(REPO / "sdk_templates" / "examples" / "conan_consumer", consumer)
        cml = consumer / "CMakeLists.txt"
        cml.write_text(cml.read_text().replace("PRIVATE edgepack::edgepack)",
                                               f"PRIVATE {target})"))
        assert target in cml.read_text()
        app = _consume(consumer, profile, env)
        assert read_elf(app).machine == EM_AARCH64
        done = qemu.run(board("hi3559a"), [app])
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        assert done.stdout.decode().startswith(f"edgepack {sdk_version()}")


def test_profile_of_a_project_local_board(tmp_path: Path) -> None:
    """A board file in the user's project (not in edgepack's boards/) gets a Conan profile
    from its own fields."""
    text = (REPO / "boards" / "rpi4-armhf.yaml").read_text()
    text = text.replace("id: rpi4-armhf", "id: my-panel").replace(
        "min_glibc: \"2.31\"", "min_glibc: \"2.28\"")
    (tmp_path / "my-panel.yaml").write_text(text)
    local = load_board(str(tmp_path / "my-panel.yaml"))
    assert local.id == "my-panel"
    profile = write_profile(local, resolve_toolchain(local), tmp_path / "cache")
    body = profile.read_text()
    assert "arch=armv7hf" in body and "compiler.libcxx=libc++" in body
    toolchain = (profile.parent / "toolchain.cmake").read_text()
    assert 'EDGEPACK_ZIG_TARGET "arm-linux-gnueabihf.2.28"' in toolchain
    for flag in local.cpu.zig_flags:
        assert flag in toolchain
    assert str(profile.parent / "toolchain.cmake") in body


def test_every_board_renders_a_profile(tmp_path: Path) -> None:
    for b in list_boards():
        tc = resolve_toolchain(b)
        body = render_profile(b, tc, tmp_path / "toolchain.cmake")
        assert "[settings]" in body and f"board {b.id}" in body
        assert ("compiler=clang" in body) == (tc.zig_target is not None)

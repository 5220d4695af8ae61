# SPDX-License-Identifier: Apache-2.0
"""The SDK as a Conan 2 package for rpi4, created and consumed offline in an isolated home."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from conftest import REPO, board

from edgepack.build import qemu
from edgepack.build.conanpkg import conan_env, create_package, run_conan, sdk_version
from edgepack.build.elfinfo import EM_AARCH64, read_elf
from edgepack.build.sdkbuild import cmake_program
from edgepack.build.toolchains import toolchains_dir


def test_conan_create_and_consume_rpi4(cross_cache: Path, tmp_path: Path) -> None:
    home = tmp_path / "conan-home"
    result = create_package("rpi4", conan_home=home, cache=cross_cache)
    assert result["reference"] == f"edgepack-sdk/{sdk_version()}"
    consumer = tmp_path / "consumer"
    shutil.copytree(REPO / "sdk_templates" / "examples" / "conan_consumer", consumer)
    env = conan_env(Path(result["sysroot"]["path"]), "aarch64-linux-gnu", home)
    run_conan(["install", str(consumer), "-pr:h", str(toolchains_dir() / "conan" / "rpi4"),
               "-pr:b", "default", "--build=never", "--no-remote"], env, "conan install",
              cwd=consumer)
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
    app = build / "edgepack_consumer"
    assert read_elf(app).machine == EM_AARCH64
    done = qemu.run(board("rpi4"), [app])
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert done.stdout.decode().startswith(f"edgepack {sdk_version()}")

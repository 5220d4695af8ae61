# SPDX-License-Identifier: Apache-2.0
"""The SDK as a Conan 2 package: ``conan create`` with the board's profile, offline.

The recipe is ``sdk_templates/conanfile.py``; each board has a host profile in
``toolchains/conan/<board>`` that points CMake at the board's toolchain file. OpenSSL comes from
the board's Debian-package sysroot (``EDGEPACK_SYSROOT`` in the environment), never from a
remote, so no network is needed (``--no-remote``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from edgepack.build.sdkbuild import SDK_SOURCE_DIR
from edgepack.build.sysroot import cache_root, ensure_sysroot
from edgepack.build.toolchains import resolve_toolchain, toolchains_dir
from edgepack.errors import ToolchainError
from edgepack.spec.boards import Board, load_board

PACKAGE_NAME = "edgepack-sdk"


def conan_program() -> str:
    local = Path(sys.executable).parent / "conan"
    if local.is_file():
        return str(local)
    found = shutil.which("conan")
    if found is None:
        raise ToolchainError("conan not found", hint="pip install 'conan>=2.10,<3'")
    return found


def profile_path(board: Board) -> Path:
    path = toolchains_dir() / "conan" / board.id
    if not path.is_file():
        raise ToolchainError(f"no Conan profile for board {board.id!r}: expected {path}",
                             hint="see docs/adding-a-board.md")
    return path


def sdk_version(source: Path = SDK_SOURCE_DIR) -> str:
    text = (source / "CMakeLists.txt").read_text()
    match = re.search(r"project\(\s*\w+\s+VERSION\s+([0-9.]+)", text)
    return match.group(1) if match else "0.0.0"


def conan_env(sysroot: Path, triple: str, conan_home: Path | None) -> dict[str, str]:
    """The environment the board profiles read: sysroot and the compiler triple to use."""
    env = dict(os.environ)
    env["EDGEPACK_SYSROOT"] = str(sysroot)
    env["EDGEPACK_TRIPLE"] = triple
    if conan_home is not None:
        env["CONAN_HOME"] = str(conan_home)
    return env


def run_conan(args: list[str], env: dict[str, str], what: str,
              cwd: Path | None = None) -> str:
    command = [conan_program(), *args]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=3600)
    output = done.stdout + done.stderr
    if done.returncode != 0:
        errors = [ln for ln in output.splitlines() if "ERROR" in ln or "error:" in ln][:8]
        detail = "\n".join(f"    {ln}" for ln in errors) or output[-2000:]
        raise ToolchainError(f"{what} failed: {' '.join(command)}\n{detail}")
    return output


def ensure_default_profile(env: dict[str, str]) -> None:
    """``conan profile detect`` once: the build profile (this machine) Conan needs."""
    probe = subprocess.run([conan_program(), "profile", "path", "default"],
                           capture_output=True, text=True, env=env, timeout=120)
    if probe.returncode != 0:
        run_conan(["profile", "detect"], env, "conan profile detect")


def create_package(board_id: str, *, conan_home: Path | None = None,
                   cache: Path | None = None) -> dict[str, Any]:
    """``conan create`` of the SDK for a board into the local Conan cache."""
    board = load_board(board_id)
    toolchain = resolve_toolchain(board)
    if toolchain.warning:
        print(f"edgepack: warning: {toolchain.warning}", file=sys.stderr)
    profile = profile_path(board)
    sysroot = ensure_sysroot(board.debian_arch, board.sysroot_packages, cache or cache_root())
    env = conan_env(sysroot.path, toolchain.triple, conan_home)
    ensure_default_profile(env)
    version = sdk_version()
    run_conan(["create", str(SDK_SOURCE_DIR), "-pr:h", str(profile), "-pr:b", "default",
               "--build=missing", "--no-remote"], env, f"conan create for {board.id}")
    return {"board": board.id, "reference": f"{PACKAGE_NAME}/{version}",
            "profile": str(profile), "conan_home": env.get("CONAN_HOME"),
            "sysroot": sysroot.describe()}



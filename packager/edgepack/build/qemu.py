# SPDX-License-Identifier: Apache-2.0
"""Run a board's binaries on this machine with qemu-user, no board needed.

Static binaries run directly when binfmt_misc knows the architecture (qemu-user-static
registers it); otherwise through ``qemu-<arch>`` on PATH. Dynamic ones also need the target's
C library: ``QEMU_LD_PREFIX`` points qemu at it (``/usr/<triple>`` of the Debian cross
compiler unless a sysroot is given). Timings under emulation mean nothing: tests check
outputs only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from edgepack.build.elfinfo import read_elf
from edgepack.build.toolchains import DEBIAN_COMPILER_PACKAGES
from edgepack.errors import ToolchainError
from edgepack.spec.boards import Board

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")


def binfmt_registered(qemu: str) -> bool:
    """True when binfmt_misc runs this architecture's ELF files through qemu (enabled)."""
    entry = BINFMT_DIR / qemu
    try:
        return entry.read_text().splitlines()[0].strip() == "enabled"
    except (OSError, IndexError):
        return False


def default_ld_prefix(board: Board) -> Path:
    """``/usr/<triple>`` of the first Debian toolchain of the board: its C library for qemu."""
    for triple in board.toolchains:
        if triple in DEBIAN_COMPILER_PACKAGES:
            return Path("/usr") / triple
    raise ToolchainError(f"board {board.id!r} has no Debian toolchain to take a C library from; "
                         "pass sysroot=")


def command_for(board: Board, argv: Sequence[str | os.PathLike[str]],
                sysroot: Path | None = None) -> tuple[list[str], dict[str, str]]:
    """The argv and extra environment that run ``argv[0]`` (a board binary) here."""
    args = [os.fspath(a) for a in argv]
    if board.qemu is None:
        return args, {}
    env: dict[str, str] = {}
    if not read_elf(Path(args[0])).static:
        env["QEMU_LD_PREFIX"] = str(sysroot if sysroot is not None else default_ld_prefix(board))
    if binfmt_registered(board.qemu):
        return args, env
    emulator = shutil.which(board.qemu) or shutil.which(f"{board.qemu}-static")
    if emulator is None:
        raise ToolchainError(f"cannot run {board.arch} binaries: no binfmt handler and no "
                             f"{board.qemu} on PATH",
                             hint="apt-get install qemu-user qemu-user-static binfmt-support")
    return [emulator, *args], env


def run(board: Board, argv: Sequence[str | os.PathLike[str]], sysroot: Path | None = None, *,
        cwd: Path | None = None, env: Mapping[str, str] | None = None,
        input: bytes | None = None, timeout: float = 300) -> subprocess.CompletedProcess[bytes]:
    """Runs a binary built for ``board``; returns the completed process (output captured)."""
    args, extra = command_for(board, argv, sysroot)
    full_env = dict(os.environ if env is None else env)
    full_env.update(extra)
    return subprocess.run(args, cwd=cwd, env=full_env, input=input, capture_output=True,
                          timeout=timeout, check=False)

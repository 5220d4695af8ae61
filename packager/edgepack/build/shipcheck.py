# SPDX-License-Identifier: Apache-2.0
"""What a board build ships, checked and slimmed: the C library its binaries need, and their
debug information moved out to the host.

``check_glibc`` reads the symbol versions (``.gnu.version_r``) of every shipped ELF file and
refuses the build when one needs a newer glibc than the board's ``min_glibc`` or a shared
libstdc++ (``GLIBCXX_``: libstdc++/libc++ are linked statically into everything shipped).
``split_debug`` keeps each binary's debug information in ``<debug>/<rel>.debug`` on the host
and strips the shipped copy (``.gnu_debuglink`` points gdb at the .debug file).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgepack.build.elfinfo import (
    NotElf,
    read_elf,
    required_glibc,
    required_glibcxx,
    version_key,
)
from edgepack.errors import ToolchainError


class GlibcTooNew(ToolchainError):
    """A shipped binary needs a newer C library than the board has."""


def shipped_elves(tree: Path) -> Iterator[Path]:
    """ELF files under ``tree/bin`` and ``tree/lib`` (executables, shared and static libs)."""
    for folder in ("bin", "lib"):
        for path in sorted((tree / folder).rglob("*")) if (tree / folder).is_dir() else []:
            if path.is_symlink() or not path.is_file():
                continue
            if path.suffix == ".a" or _is_elf(path):
                yield path


def _is_elf(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"\x7fELF"


def check_glibc(tree: Path, min_glibc: str, board_id: str, board_file: Path) -> dict[str, Any]:
    """Per binary the highest GLIBC_ it needs, and the highest overall; ``GlibcTooNew`` when
    one needs more than ``min_glibc`` or any needs a shared libstdc++."""
    per_file: dict[str, str | None] = {}
    problems: list[str] = []
    for path in shipped_elves(tree):
        if path.suffix == ".a":
            continue  # linked into the app, which the app's own build checks
        rel = str(path.relative_to(tree))
        try:
            glibc = required_glibc([path])
            glibcxx = required_glibcxx([path])
        except NotElf as exc:
            raise ToolchainError(f"cannot read the symbol versions of {rel}: {exc}") from exc
        per_file[rel] = glibc
        if glibc is not None and version_key(glibc) > version_key(min_glibc):
            problems.append(f"{rel} needs GLIBC_{glibc}")
        if glibcxx is not None:
            problems.append(f"{rel} needs a shared libstdc++ (GLIBCXX_{glibcxx})")
    if problems:
        raise GlibcTooNew(
            f"board {board_id} has glibc {min_glibc} (min_glibc in {board_file}), but "
            + "; ".join(problems),
            hint="build with zig's versioned glibc target or the board's vendor toolchain "
                 "(see docs/cross-builds.md), or raise min_glibc if the board really has a "
                 "newer C library")
    needed = [v for v in per_file.values() if v is not None]
    return {"min_glibc": min_glibc,
            "required_glibc": max(needed, key=version_key) if needed else None,
            "binaries": per_file}


def objcopy_program(triple: str) -> str:
    """GNU objcopy for the target (``<triple>-objcopy``), else LLVM's (any architecture)."""
    for name in (f"{triple}-objcopy", "llvm-objcopy"):
        found = shutil.which(name)
        if found:
            return found
    raise ToolchainError(f"no objcopy for {triple}: cannot strip the shipped binaries",
                         hint=f"apt-get install binutils-{triple}")


def _objcopy(objcopy: str, args: list[str], what: str, cwd: Path | None = None) -> None:
    try:
        done = subprocess.run([objcopy, *args], capture_output=True, text=True, timeout=300,
                              cwd=cwd)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolchainError(f"{what}: {exc}") from exc
    if done.returncode != 0:
        raise ToolchainError(f"{what} failed: {objcopy} {' '.join(args)}\n{done.stderr[-1500:]}")


def split_debug(tree: Path, debug_dir: Path, objcopy: str) -> dict[str, dict[str, int]]:
    """Strips every shipped binary of ``tree``; debug info goes to ``debug_dir``. Returns the
    sizes before and after, per file relative to ``tree``."""
    sizes: dict[str, dict[str, int]] = {}
    for path in shipped_elves(tree):
        rel = path.relative_to(tree)
        before = path.stat().st_size
        if path.suffix == ".a":
            _objcopy(objcopy, ["--strip-debug", str(path)], f"strip {rel}")
        else:
            debug = debug_dir / f"{rel}.debug"
            debug.parent.mkdir(parents=True, exist_ok=True)
            _objcopy(objcopy, ["--only-keep-debug", str(path), str(debug)],
                     f"keep the debug info of {rel}")
            # Executables lose their symbol table too; a shared library keeps what it exports.
            mode = "--strip-unneeded" if read_elf(path).elf_type == 3 and ".so" in path.name \
                else "--strip-all"
            # The debuglink records the file name only (run from its folder); gdb looks beside
            # the binary and in debug-file-directory (point it at the debug folder).
            _objcopy(objcopy, [mode, f"--add-gnu-debuglink={debug.name}", str(path.resolve())],
                     f"strip {rel}", cwd=debug.parent)
        sizes[str(rel)] = {"before": before, "after": path.stat().st_size}
    return sizes

# SPDX-License-Identifier: Apache-2.0
"""Which compiler builds for a board: the board's toolchain triples, tried in order.

A board lists GNU triples, most preferred first (a vendor compiler such as HiSilicon's
``aarch64-himix100-linux`` before Debian's generic ``aarch64-linux-gnu`` with the same ABI).
The first whose ``<triple>-g++`` is on PATH wins; falling back from a vendor compiler prints a
warning, since vendor compilers can carry fixes and tuning for their SoC. Each triple has one
CMake toolchain file in ``toolchains/<triple>.toolchain.cmake`` (the host uses ``host``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from edgepack.errors import ToolchainError
from edgepack.spec.boards import Board

TOOLCHAINS_PATH_ENV = "EDGEPACK_TOOLCHAINS_PATH"
BUILTIN_TOOLCHAINS_DIR = Path(__file__).resolve().parents[3] / "toolchains"

# Debian packages that install a generic cross compiler; a triple not listed is a vendor one.
DEBIAN_COMPILER_PACKAGES = {
    "aarch64-linux-gnu": "g++-aarch64-linux-gnu",
    "arm-linux-gnueabihf": "g++-arm-linux-gnueabihf",
    "x86_64-linux-gnu": "g++",
}
# Where a vendor compiler comes from, for the messages.
VENDOR_SDKS = {
    "aarch64-himix100-linux": "the HiSilicon SDK",
}
# Toolchain files not named after their triple.
_FILE_NAMES = {"x86_64-linux-gnu": "host"}


@dataclass(frozen=True)
class Toolchain:
    triple: str  # the triple that was chosen
    cxx: str  # absolute path of <triple>-g++
    cc: str  # absolute path of <triple>-gcc
    file: Path  # the CMake toolchain file
    version: str  # e.g. "12.2.0" (gcc -dumpfullversion)
    version_line: str  # first line of `--version`
    vendor: bool  # a vendor compiler (not a Debian package)
    warning: str | None  # set when a preferred vendor compiler was missing


def is_vendor_triple(triple: str) -> bool:
    return triple not in DEBIAN_COMPILER_PACKAGES


def install_hint(triple: str) -> str:
    """The command (or step) that puts ``<triple>-g++`` on PATH."""
    if triple in DEBIAN_COMPILER_PACKAGES:
        return f"apt-get install {DEBIAN_COMPILER_PACKAGES[triple]}"
    sdk = VENDOR_SDKS.get(triple, "the vendor SDK")
    return f"install {sdk} and put its bin/ folder on PATH"


def toolchains_dir() -> Path:
    override = os.environ.get(TOOLCHAINS_PATH_ENV)
    return Path(override) if override else BUILTIN_TOOLCHAINS_DIR


def toolchain_file(triple: str) -> Path:
    path = toolchains_dir() / f"{_FILE_NAMES.get(triple, triple)}.toolchain.cmake"
    if not path.is_file():
        raise ToolchainError(f"no CMake toolchain file for {triple}: expected {path}",
                             hint="see docs/adding-a-board.md")
    return path


def compiler_version(cxx: str) -> tuple[str, str]:
    """(``-dumpfullversion``, first line of ``--version``) of a GCC-compatible compiler."""
    try:
        full = subprocess.run([cxx, "-dumpfullversion"], capture_output=True, text=True,
                              timeout=30, check=True).stdout.strip()
        line = subprocess.run([cxx, "--version"], capture_output=True, text=True,
                              timeout=30, check=True).stdout.splitlines()[0].strip()
    except (OSError, subprocess.SubprocessError, IndexError) as exc:
        raise ToolchainError(f"{cxx} does not run: {exc}") from exc
    return full, line


def find_compiler(triple: str, search_path: str | None = None) -> tuple[str, str] | None:
    """Absolute paths of ``<triple>-g++`` and ``<triple>-gcc`` if both are on PATH."""
    cxx = shutil.which(f"{triple}-g++", path=search_path)
    cc = shutil.which(f"{triple}-gcc", path=search_path)
    if cxx is None or cc is None:
        return None
    return cxx, cc


def resolve_toolchain(board: Board, search_path: str | None = None) -> Toolchain:
    """The first of ``board.toolchains`` installed; ``ToolchainError`` when none is."""
    if not board.toolchains:
        raise ToolchainError(f"board {board.id!r} lists no toolchains ({board.path})")
    skipped: list[str] = []
    for triple in board.toolchains:
        found = find_compiler(triple, search_path)
        if found is None:
            skipped.append(triple)
            continue
        cxx, cc = found
        version, line = compiler_version(cxx)
        warning = None
        vendor_skipped = [t for t in skipped if is_vendor_triple(t)]
        if vendor_skipped:
            missing = vendor_skipped[0]
            sdk = VENDOR_SDKS.get(missing, "the vendor SDK")
            warning = (f"vendor toolchain {missing}-g++ not on PATH; using {triple}-g++ "
                       f"(same ABI) — install {sdk} to use the vendor compiler")
        return Toolchain(triple=triple, cxx=cxx, cc=cc, file=toolchain_file(triple),
                         version=version, version_line=line, vendor=is_vendor_triple(triple),
                         warning=warning)
    tried = ", ".join(f"{t}-g++" for t in board.toolchains)
    hints = "; ".join(install_hint(t) for t in reversed(board.toolchains))
    raise ToolchainError(f"no compiler for board {board.id!r}: none of {tried} is on PATH",
                         hint=hints)

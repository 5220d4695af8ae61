# SPDX-License-Identifier: Apache-2.0
"""Which compiler builds for a board: the board's toolchain triples, tried in order.

A board lists GNU triples, most preferred first (a vendor compiler such as HiSilicon's
``aarch64-himix100-linux`` before Debian's generic ``aarch64-linux-gnu`` with the same ABI).
A vendor triple is used when its ``<triple>-g++`` is on PATH; falling back from a vendor
compiler prints a warning, since vendor compilers can carry fixes and tuning for their SoC.
A generic Debian triple of a board that is not the build machine itself is built with zig
(the ``ziglang`` package) against the board's ``min_glibc`` — ``-target
aarch64-linux-gnu.2.24`` — through ``toolchains/zig.toolchain.cmake``: Debian's cross GCC links
against its own glibc 2.36, and its binaries do not load on older boards. Every other triple
has one CMake toolchain file in ``toolchains/<triple>.toolchain.cmake`` (the host uses ``host``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from edgepack.errors import ToolchainError
from edgepack.resources import toolchains_dir as shipped_toolchains_dir
from edgepack.spec.arch import ARCHES
from edgepack.spec.boards import Board

TOOLCHAINS_PATH_ENV = "EDGEPACK_TOOLCHAINS_PATH"
BUILTIN_TOOLCHAINS_DIR = shipped_toolchains_dir()

# Debian packages that install a generic cross compiler (from spec/arch.py's table); a triple
# not listed is a vendor one.
DEBIAN_COMPILER_PACKAGES = {a.triplet: a.cross_gxx_package or "g++" for a in ARCHES.values()}
# Where a vendor compiler comes from, for the messages.
VENDOR_SDKS = {
    "aarch64-himix100-linux": "the HiSilicon SDK",
}
# Toolchain files not named after their triple.
_FILE_NAMES = {"x86_64-linux-gnu": "host"}
# Generic triples built with zig against the board's min_glibc (the build machine's own triple
# keeps the system compiler), and zig's musl target for fully static programs (the agent).
ZIG_TRIPLES = {a.zig_gnu: a.zig_musl for a in ARCHES.values() if a.cross_gxx_package}
ZIG_FILE = "zig"
# What every cross toolchain file shares, include()d from beside it (ships with it in the SDK).
SHARED_FILE = "linux-cross.cmake"


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
    zig_target: str | None = None  # zig builds: e.g. "aarch64-linux-gnu.2.24"
    static_zig_target: str | None = None  # zig builds: the musl target of static programs
    arch_flags: tuple[str, ...] = field(default=())  # CPU flags in this compiler's spelling
    # The flags of the SDOT int8 kernel's one source file; empty: the board has no dotprod.
    dotprod_flags: tuple[str, ...] = field(default=())

    @property
    def kind(self) -> str:
        return "zig" if self.zig_target else "gcc"

    def cmake_args(self, *, static: bool = False) -> list[str]:
        """Toolchain-specific configure arguments (``static``: a fully static program)."""
        if not self.zig_target:
            return []
        target = self.static_zig_target if static and self.static_zig_target else self.zig_target
        return [f"-DEDGEPACK_ZIG={self.cxx}", f"-DEDGEPACK_ZIG_TARGET={target}"]


def feature_flags(arch_flags: tuple[str, ...], feature: str, *, zig: bool) -> tuple[str, ...]:
    """``arch_flags`` with ``+feature`` on their -mcpu/-march: the flags of a source file built
    for an optional CPU extension of the board (``cpu: features:``), e.g. the SDOT kernel
    (``-mcpu=cortex-a78ae+dotprod``). The rest of the build keeps ``arch_flags``, and the
    runtime calls such code only on a CPU that reports the extension."""
    out = tuple(f"{f}+{feature}" if f.startswith(("-mcpu=", "-march=")) else f
                for f in arch_flags)
    if out != arch_flags:
        return out
    return (*arch_flags, f"-mcpu=generic+{feature}" if zig else f"-march=armv8-a+{feature}")


def _dotprod_flags(board: Board, arch_flags: tuple[str, ...], *, zig: bool) -> tuple[str, ...]:
    if "dotprod" not in board.cpu.features:
        return ()
    return feature_flags(arch_flags, "dotprod", zig=zig)


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


def shipped_toolchain_files(tc: Toolchain) -> list[Path]:
    """The toolchain file and the shared part it includes, to copy beside each other."""
    shared = tc.file.parent / SHARED_FILE
    return [tc.file, shared] if SHARED_FILE in tc.file.read_text() else [tc.file]


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


def zig_program() -> str | None:
    """The zig executable of the ``ziglang`` package (a dependency), else ``zig`` on PATH."""
    try:
        import ziglang  # type: ignore[import-untyped]
    except ImportError:
        return shutil.which("zig")
    path = Path(ziglang.__file__).parent / "zig"
    return str(path) if path.is_file() else shutil.which("zig")


def zig_toolchain(board: Board, triple: str) -> Toolchain:
    """zig for ``triple`` against ``board.min_glibc``."""
    zig = zig_program()
    if zig is None:
        raise ToolchainError(f"zig not found: it builds {board.id} against glibc "
                             f"{board.min_glibc}", hint="pip install ziglang")
    try:
        version = subprocess.run([zig, "version"], capture_output=True, text=True, timeout=60,
                                 check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        raise ToolchainError(f"{zig} does not run: {exc}", hint="pip install ziglang") from exc
    target = f"{triple}.{board.min_glibc}"
    flags = board.cpu.zig_flags or board.cpu.flags
    return Toolchain(triple=triple, cxx=zig, cc=zig, file=toolchain_file(ZIG_FILE),
                     version=version, version_line=f"zig {version} ({target})", vendor=False,
                     warning=None, zig_target=target, static_zig_target=ZIG_TRIPLES[triple],
                     arch_flags=flags, dotprod_flags=_dotprod_flags(board, flags, zig=True))


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
        if triple in ZIG_TRIPLES:
            tc = zig_toolchain(board, triple)
            return _with_warning(tc, skipped)
        found = find_compiler(triple, search_path)
        if found is None:
            skipped.append(triple)
            continue
        cxx, cc = found
        version, line = compiler_version(cxx)
        return _with_warning(
            Toolchain(triple=triple, cxx=cxx, cc=cc, file=toolchain_file(triple),
                      version=version, version_line=line, vendor=is_vendor_triple(triple),
                      warning=None, arch_flags=board.cpu.flags,
                      dotprod_flags=_dotprod_flags(board, board.cpu.flags, zig=False)), skipped)
    tried = ", ".join(f"{t}-g++" for t in board.toolchains)
    hints = "; ".join(install_hint(t) for t in reversed(board.toolchains))
    raise ToolchainError(f"no compiler for board {board.id!r}: none of {tried} is on PATH",
                         hint=hints)


def _with_warning(tc: Toolchain, skipped: list[str]) -> Toolchain:
    """``tc`` with the warning for a preferred vendor compiler that was not on PATH."""
    vendor_skipped = [t for t in skipped if is_vendor_triple(t)]
    if not vendor_skipped:
        return tc
    missing = vendor_skipped[0]
    sdk = VENDOR_SDKS.get(missing, "the vendor SDK")
    using = f"zig ({tc.zig_target})" if tc.zig_target else f"{tc.triple}-g++"
    warning = (f"vendor toolchain {missing}-g++ not on PATH; using {using} "
               f"(same ABI) — install {sdk} to use the vendor compiler")
    return Toolchain(**{**tc.__dict__, "warning": warning})

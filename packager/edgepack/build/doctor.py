# SPDX-License-Identifier: Apache-2.0
"""What a machine needs to build and test for boards, each item present or missing with the
exact command that installs it. Checks only: nothing here installs or downloads."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edgepack.build.qemu import binfmt_registered
from edgepack.build.sysroot import cache_root, load_sysroot, sysroot_dir
from edgepack.build.toolchains import (
    ZIG_TRIPLES,
    compiler_version,
    find_compiler,
    install_hint,
    is_vendor_triple,
    zig_program,
)
from edgepack.programs import find_program
from edgepack.spec.boards import Board


@dataclass(frozen=True)
class Check:
    area: str  # toolchain, sysroot, qemu, tool
    name: str
    ok: bool
    detail: str
    fix: str | None = None  # the command that makes it ok
    required: bool = True  # a missing optional item (vendor compiler) is not a failure

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _tool_version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"does not run: {exc}"
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0] if lines else "(no version output)"


def check_toolchains(board: Board) -> list[Check]:
    checks: list[Check] = []
    usable = False
    for triple in board.toolchains:
        if triple in ZIG_TRIPLES:  # built with zig against the board's glibc
            zig = zig_program()
            usable = usable or zig is not None
            checks.append(Check("toolchain", f"zig {triple}.{board.min_glibc} ({board.id})",
                                zig is not None,
                                _tool_version([zig, "version"]) if zig else "not found",
                                None if zig else "pip install ziglang"))
            strip = shutil.which(f"{triple}-objcopy") or shutil.which("llvm-objcopy")
            checks.append(Check("toolchain", f"{triple}-objcopy ({board.id})", strip is not None,
                                strip or "not found",
                                None if strip else f"apt-get install binutils-{triple}"))
            continue
        found = find_compiler(triple)
        vendor = is_vendor_triple(triple)
        if found:
            usable = True
            checks.append(Check("toolchain", f"{triple}-g++ ({board.id})", True,
                                compiler_version(found[0])[1]))
        else:
            checks.append(Check("toolchain", f"{triple}-g++ ({board.id})", False,
                                "not on PATH" + (" (vendor compiler; the generic one is used)"
                                                 if vendor else ""),
                                install_hint(triple), required=not vendor))
    if not usable:  # every missing one is then required
        checks = [Check(c.area, c.name, c.ok, c.detail, c.fix, True) for c in checks]
    return checks


def check_sysroot(board: Board) -> Check:
    name = f"sysroot {board.debian_arch} ({', '.join(board.sysroot_packages)})"
    made = load_sysroot(sysroot_dir(board.debian_arch, board.sysroot_packages, cache_root()))
    if made is not None:
        versions = ", ".join(f"{k} {v}" for k, v in sorted(made.packages.items()))
        return Check("sysroot", name, True, f"cached: {versions}")
    first = board.sysroot_packages[0]
    try:
        probe = subprocess.run(["apt-cache", "show", f"{first}:{board.debian_arch}"],
                               capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return Check("sysroot", name, False, "apt-cache not found (sysroots need apt)",
                     "apt-get install apt dpkg-dev")
    if probe.returncode == 0 and probe.stdout.strip():
        return Check("sysroot", name, True, "not fetched yet; apt can download it on first build")
    return Check("sysroot", name, False, f"apt does not know {first}:{board.debian_arch}",
                 f"dpkg --add-architecture {board.debian_arch} && apt-get update")


def check_qemu(board: Board) -> Check | None:
    if board.qemu is None:
        return None
    if binfmt_registered(board.qemu):
        return Check("qemu", board.qemu, True, "binfmt_misc handler enabled")
    on_path = shutil.which(board.qemu)
    if on_path:
        return Check("qemu", board.qemu, True, f"{on_path} (no binfmt handler)")
    return Check("qemu", board.qemu, False, "no binfmt handler and not on PATH",
                 "apt-get install qemu-user qemu-user-static binfmt-support")


def check_tools() -> list[Check]:
    checks = []
    for name, argv_tail, fix in (("cmake", ["--version"], "pip install cmake"),
                                 ("ninja", ["--version"], "apt-get install ninja-build"),
                                 ("conan", ["--version"], "pip install 'conan>=2.10,<3'")):
        path = find_program(name)
        checks.append(Check("tool", name, True, _tool_version([path, *argv_tail]))
                      if path else Check("tool", name, False, "not found", fix))
    headers = Path("/usr/include/openssl/evp.h")
    checks.append(Check("tool", "OpenSSL headers (host)", headers.is_file(),
                        str(headers) if headers.is_file() else "missing",
                        None if headers.is_file() else "apt-get install libssl-dev"))
    for name, paths, fix in (("sshd", ["/usr/sbin/sshd"], "apt-get install openssh-server"),
                             ("socat", [], "apt-get install socat")):
        found = next((p for p in paths if Path(p).is_file()), None) or shutil.which(name)
        checks.append(Check("tool", name, found is not None, found or "not found",
                            None if found else fix))
    return checks


def run_checks(boards: list[Board]) -> list[Check]:
    checks: list[Check] = []
    seen_sysroots: set[tuple[str, tuple[str, ...]]] = set()
    seen_qemu: set[str] = set()
    for board in boards:
        checks.extend(check_toolchains(board))
        if (board.debian_arch, board.sysroot_packages) not in seen_sysroots:
            seen_sysroots.add((board.debian_arch, board.sysroot_packages))
            checks.append(check_sysroot(board))
        q = check_qemu(board)
        if q is not None and q.name not in seen_qemu:
            seen_qemu.add(q.name)
            checks.append(q)
    checks.extend(check_tools())
    return checks

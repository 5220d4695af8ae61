# SPDX-License-Identifier: Apache-2.0
"""Build the C++ SDK (and the device agent) for a board: CMake + Ninja + the board's toolchain.

Generic over the CMake projects: configure, build, install — nothing here knows their file
lists. Build folders are cached under ``<cache>/build/<board>-<key>/`` where the key covers
everything that changes the object files (board, toolchain and its version, CPU flags,
sysroot package versions), so a second build with no C++ change is a Ninja no-op. The output
``DIR/<board>/`` (unpacked SDK + BUILDINFO.json + README.md + the toolchain file an app
needs) and the tarball beside it are written in a temp folder and renamed into place: a failed
build leaves the old output, never a half-written one. Shipped binaries are stripped, their
debug information kept on the host in ``DIR/<board>.debug/``, and each is checked against the
board's ``min_glibc`` (shipcheck.py) before anything is renamed into place.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgepack import __version__
from edgepack.build.sdkreadme import render_readme, sdk_toolchain_files
from edgepack.build.shipcheck import check_glibc, objcopy_program, split_debug
from edgepack.build.sysroot import Sysroot, cache_root, ensure_sysroot, file_lock
from edgepack.build.toolchains import Toolchain, resolve_toolchain
from edgepack.errors import ToolchainError
from edgepack.programs import require_program
from edgepack.resources import agent_source_dir, sdk_source_dir
from edgepack.spec.boards import Board, load_board
from edgepack.ui import Progress

SDK_SOURCE_DIR = sdk_source_dir()
AGENT_SOURCE_DIR = agent_source_dir()
BUILDINFO_SCHEMA = "edgepack.buildinfo/1"
NO_WORK = "ninja: no work to do."
_SKIP_DIRS = {"build", "__pycache__", ".git"}


@dataclass(frozen=True)
class ProjectBuild:
    name: str  # "sdk" or "agent"
    source: Path
    build_dir: Path
    log: Path  # output of the last configure + build
    compiled: bool  # False when Ninja had no work to do


@dataclass(frozen=True)
class SdkBuild:
    board: str
    sdk_dir: Path  # DIR/<board>: include/, lib/, bin/, lib/cmake/edgepack/, BUILDINFO.json
    tarball: Path  # DIR/edgepack-sdk-<version>-<board>.tar.gz
    buildinfo: dict[str, Any]
    toolchain: Toolchain
    sysroot: Sysroot
    projects: tuple[ProjectBuild, ...] = field(default=())

    @property
    def compiled(self) -> bool:
        """True when any project compiled or linked something in this build."""
        return any(p.compiled for p in self.projects)


def cmake_program() -> str:
    """The CMake of this Python environment (pinned by pyproject), else the one on PATH."""
    return require_program("cmake", hint="pip install cmake (or apt-get install cmake)")


def source_hash(folder: Path) -> str:
    """SHA-256 over the relative paths and contents of every file of a source folder."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part in _SKIP_DIRS or part.startswith(".") for part in rel.parts):
            continue
        if path.is_file():
            digest.update(str(rel).encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def zig_cache(cache: Path) -> Path:
    """zig's global cache (its libc stubs and libc++, built once per target) in ours."""
    return cache / "zig"


def cmake_args(board: Board, toolchain: Toolchain, sysroot: Sysroot,
               cache: Path | None = None) -> list[str]:
    """Configure arguments shared by every project built for ``board``."""
    usr = sysroot.path / "usr"
    args = [
        "-G", "Ninja",
        f"-DCMAKE_TOOLCHAIN_FILE={toolchain.file}",
        f"-DEDGEPACK_ARCH_FLAGS={' '.join(toolchain.arch_flags)}",
        f"-DEDGEPACK_DOTPROD_FLAGS={' '.join(toolchain.dotprod_flags)}",
        f"-DEDGEPACK_SYSROOT={sysroot.path}",
        "-DCMAKE_BUILD_TYPE=Release",
        # Debug information for the host's copy (DIR/<board>.debug); the device gets stripped
        # binaries.
        "-DCMAKE_C_FLAGS_RELEASE=-O3 -DNDEBUG -g",
        "-DCMAKE_CXX_FLAGS_RELEASE=-O3 -DNDEBUG -g",
        *toolchain.cmake_args(),
        "-DEDGEPACK_BUILD_TESTS=OFF",
        "-DEDGEPACK_STATIC_CRYPTO=ON",
        "-DOPENSSL_USE_STATIC_LIBS=TRUE",
        f"-DOPENSSL_ROOT_DIR={usr}",
        f"-DOPENSSL_INCLUDE_DIR={usr / 'include'}",
    ]
    # FindOpenSSL does not look in Debian's multiarch lib folder under OPENSSL_ROOT_DIR: name
    # the static libraries themselves.
    static_libs = (("libcrypto.a", "OPENSSL_CRYPTO_LIBRARY"), ("libssl.a", "OPENSSL_SSL_LIBRARY"))
    for lib, var in static_libs:
        found = sorted((usr / "lib").glob(f"*/{lib}")) or sorted((usr / "lib").glob(lib))
        if found:
            args.append(f"-D{var}={found[0]}")
    if toolchain.zig_target:
        args.append(f"-DEDGEPACK_ZIG_CACHE={zig_cache(cache or cache_root())}")
    return args


def _project_args(name: str, args: list[str], toolchain: Toolchain) -> list[str]:
    """The agent is fully static: with zig, that is the musl target (no glibc at all), linked
    without libc++ (the agent uses its header templates only; zig then never builds libc++ for
    musl, about 90 s of a board's first build). Its codec unit test is not built: it is not
    shipped, and tests/device builds and runs it for the host."""
    if name != "agent":
        return args
    args = [*args, "-DEDGEPACK_AGENT_TESTS=OFF"]
    if not toolchain.zig_target:
        return args
    static = toolchain.cmake_args(static=True)
    return ([a for a in args if not a.startswith("-DEDGEPACK_ZIG_TARGET=")] + static[1:]
            + ["-DEDGEPACK_ZIG_LIBCXX=OFF"])


def build_key(board: Board, toolchain: Toolchain, sysroot: Sysroot, sources: list[Path]) -> str:
    data = {"board": board.id, "triple": toolchain.triple, "cxx": toolchain.cxx,
            "compiler": toolchain.version_line, "flags": list(toolchain.arch_flags),
            "dotprod_flags": list(toolchain.dotprod_flags),
            "zig_target": toolchain.zig_target, "debug": True,
            "sysroot": sysroot.packages, "sources": [str(s) for s in sources]}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _project_sources(sdk_source: Path, agent_source: Path | None) -> list[tuple[str, Path]]:
    if not (sdk_source / "CMakeLists.txt").is_file():
        raise ToolchainError(f"no CMake project at {sdk_source}")
    projects = [("sdk", sdk_source)]
    if agent_source is not None and (agent_source / "CMakeLists.txt").is_file():
        projects.append(("agent", agent_source))
    return projects


def build_sdk(board: Board | str, out_dir: Path, *, jobs: int = 2, cache: Path | None = None,
              sdk_source: Path | None = None,
              agent_source: Path | None = AGENT_SOURCE_DIR) -> SdkBuild:
    """Cross-builds the SDK (+ agent) for ``board`` into ``out_dir/<board>/`` and a tarball."""
    board = load_board(board) if isinstance(board, str) else board
    sdk_source = (sdk_source or SDK_SOURCE_DIR).resolve()
    projects = _project_sources(sdk_source, agent_source)
    toolchain = resolve_toolchain(board)
    if toolchain.warning:
        print(f"edgepack: warning: {toolchain.warning}", file=sys.stderr)
    cache = cache or cache_root()
    sysroot = ensure_sysroot(board.debian_arch, board.sysroot_packages, cache)
    args = cmake_args(board, toolchain, sysroot, cache)
    key = build_key(board, toolchain, sysroot, [src for _, src in projects])
    build_root = cache / "build" / f"{board.id}-{key}"
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{board.id}.tmp-", dir=out_dir))
    try:
        tree = staging / board.id
        debug_tree = staging / f"{board.id}.debug"
        with file_lock(build_root.with_suffix(".lock")):
            done = _build_projects(projects, build_root, args, toolchain, jobs, board.id)
            for project in done:
                _install(project, tree)
        shipped = _check_and_strip(board, toolchain, tree, debug_tree)
        for name, text in sdk_toolchain_files(board, toolchain).items():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            (tree / name).write_text(text)
        info = _buildinfo(board, toolchain, sysroot, done, tree)
        info.update(shipped)
        (tree / "BUILDINFO.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
        (tree / "README.md").write_text(render_readme(info))
        tar_name = f"edgepack-sdk-{info['sdk_version']}-{board.id}.tar.gz"
        _write_tarball(tree, staging / tar_name, tar_name.removesuffix(".tar.gz"))
        final_tree = out_dir / board.id
        final_debug = out_dir / f"{board.id}.debug"
        for old, aside in ((final_tree, "previous"), (final_debug, "previous.debug")):
            if old.exists():
                os.rename(old, staging / aside)
        os.rename(tree, final_tree)
        if debug_tree.exists():
            os.rename(debug_tree, final_debug)
        os.replace(staging / tar_name, out_dir / tar_name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return SdkBuild(board=board.id, sdk_dir=final_tree, tarball=out_dir / tar_name,
                    buildinfo=info, toolchain=toolchain, sysroot=sysroot, projects=done)


def _check_and_strip(board: Board, toolchain: Toolchain, tree: Path,
                     debug_tree: Path) -> dict[str, Any]:
    """BUILDINFO's ``glibc`` (what the binaries need) and ``sizes`` (before/after stripping);
    raises before anything is shipped when a binary needs too new a C library."""
    glibc = check_glibc(tree, board.min_glibc, board.id, board.path)
    if board.qemu is None:  # the build machine itself: nothing to slim for a slow link
        return {"glibc": glibc}
    sizes = split_debug(tree, debug_tree, objcopy_program(toolchain.triple))
    return {"glibc": glibc, "sizes": sizes}


def _build_projects(projects: list[tuple[str, Path]], build_root: Path, args: list[str],
                    toolchain: Toolchain, jobs: int, board_id: str) -> tuple[ProjectBuild, ...]:
    """Configures and builds the projects (SDK, agent) side by side, ``jobs`` each.

    They share nothing but zig's cache (which locks its own entries), and a cold build is
    mostly serial: zig builds a target's C library and libc++ in configure's first link
    (CMake's compiler checks) on about one core. Cold hi3559a on an idle two-core machine:
    one after the other 253 s, side by side 166 s (1.9 cores busy instead of 1.3)."""
    names = ", ".join(name for name, _ in projects)
    with Progress(f"build {names} for {board_id}"), \
            ThreadPoolExecutor(max_workers=len(projects)) as pool:
        running = [pool.submit(_build_project, name, src, build_root / name,
                               _project_args(name, args, toolchain), jobs, board_id)
                   for name, src in projects]
        return tuple(future.result() for future in running)


def _build_project(name: str, source: Path, build_dir: Path, args: list[str], jobs: int,
                   board_id: str) -> ProjectBuild:
    cmake = cmake_program()
    log = build_dir / "edgepack-build.log"
    build_dir.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as log_file:
        if not (build_dir / "build.ninja").is_file():
            _run_logged([cmake, "-S", str(source), "-B", str(build_dir), *args], log_file,
                        log, f"configure of {name} for {board_id}")
        output = _run_logged([cmake, "--build", str(build_dir), "-j", str(jobs)], log_file,
                             log, f"build of {name} for {board_id}")
    return ProjectBuild(name=name, source=source, build_dir=build_dir, log=log,
                        compiled=NO_WORK not in output)


def _run_logged(command: list[str], log_file: Any, log: Path, what: str) -> str:
    log_file.write("$ " + " ".join(command) + "\n")
    log_file.flush()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolchainError(f"{what} did not run: {exc}") from exc
    output = done.stdout + done.stderr
    log_file.write(output)
    log_file.flush()
    if done.returncode != 0:
        raise ToolchainError(_failure_message(what, command, output, log))
    return output


def _failure_message(what: str, command: list[str], output: str, log: Path) -> str:
    """The failing compiler command and the first error lines (Ninja's FAILED: block)."""
    lines = output.splitlines()
    failing = " ".join(command)
    for i, line in enumerate(lines):
        if line.startswith("FAILED:") and i + 1 < len(lines):
            failing = lines[i + 1].strip()
            break
    errors = [ln for ln in lines if re.search(r"\berror\b|Error", ln)][:8]
    body = "\n".join(f"    {ln}" for ln in errors) or "    (no error lines; see the log)"
    return (f"{what} failed\n  command: {failing}\n  first errors:\n{body}\n"
            f"  build log: {log}")


def _install(project: ProjectBuild, tree: Path) -> None:
    cmake = cmake_program()
    done = subprocess.run([cmake, "--install", str(project.build_dir), "--prefix", str(tree)],
                          capture_output=True, text=True, timeout=600)
    with open(project.log, "a") as log_file:
        log_file.write(done.stdout + done.stderr)
    if done.returncode != 0:
        raise ToolchainError(_failure_message(f"install of {project.name}", ["cmake", "--install"],
                                              done.stdout + done.stderr, project.log))
    if project.name == "agent" and not (tree / "bin" / "edgepack-agent").is_file():
        # The agent project may have no install rule: take the built binary itself.
        built = sorted(p for p in project.build_dir.rglob("edgepack-agent") if p.is_file())
        if built:
            (tree / "bin").mkdir(parents=True, exist_ok=True)
            shutil.copy2(built[0], tree / "bin" / "edgepack-agent")


def _cache_value(build_dir: Path, name: str) -> str | None:
    try:
        text = (build_dir / "CMakeCache.txt").read_text()
    except OSError:
        return None
    match = re.search(rf"^{re.escape(name)}:[A-Z]+=(.*)$", text, re.MULTILINE)
    return match.group(1).strip() if match else None


def sdk_abi_version(include_dir: Path) -> int | None:
    """``EP_API_VERSION`` from the installed C header, if the SDK defines it."""
    for header in sorted(include_dir.glob("*.h")) if include_dir.is_dir() else []:
        match = re.search(r"#\s*define\s+EP_API_VERSION\s+\(?(\d+)", header.read_text())
        if match:
            return int(match.group(1))
    return None


def _buildinfo(board: Board, toolchain: Toolchain, sysroot: Sysroot,
               projects: tuple[ProjectBuild, ...], tree: Path) -> dict[str, Any]:
    sdk = projects[0]
    version = _cache_value(sdk.build_dir, "CMAKE_PROJECT_VERSION") or "0.0.0"
    return {
        "schema": BUILDINFO_SCHEMA,
        "board": board.id,
        "board_name": board.name,
        "arch": board.arch,
        "edgepack_version": __version__,
        "sdk_version": version,
        "sdk_abi": sdk_abi_version(tree / "include"),
        "toolchain": {"triple": toolchain.triple, "compiler": toolchain.version_line,
                      "version": toolchain.version, "vendor": toolchain.vendor,
                      "file": toolchain.file.name, "warning": toolchain.warning,
                      "zig_target": toolchain.zig_target},
        "flags": list(toolchain.arch_flags),
        "build_type": "Release",
        "static_crypto": True,
        "sysroot": {"debian_arch": sysroot.debian_arch,
                    "packages": dict(sorted(sysroot.packages.items()))},
        "source_hash": {p.source.name: source_hash(p.source) for p in projects},
        "contents": sorted(str(p.relative_to(tree)) for p in tree.rglob("*") if p.is_file()),
    }


def _write_tarball(tree: Path, target: Path, top: str) -> None:
    def normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    # gzip level 6: within 1% of level 9's size at a sixth of the time (9 took 4 of the 5
    # seconds of a no-op board build).
    with tarfile.open(target, "w:gz", compresslevel=6) as tar:
        tar.add(tree, arcname=top, filter=normalise)

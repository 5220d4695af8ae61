# SPDX-License-Identifier: Apache-2.0
"""What makes the per-board SDK usable on its own: its README.md, and the CMake toolchain file
(with the board's target and CPU flags filled in) that an app configures with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgepack.build.toolchains import Toolchain, shipped_toolchain_files
from edgepack.spec.arch import ARCHES
from edgepack.spec.boards import Board

TOOLCHAIN_FILE = "toolchain.cmake"  # at the top of the SDK
EXAMPLE_DIR = "examples/app"  # an app to build against the SDK, copied from sdk_templates


def sdk_toolchain_files(board: Board, toolchain: Toolchain,
                        zig_cache: Path | None = None) -> dict[str, str]:
    """``toolchain.cmake`` (the board's values, then the generic file) and the generic file
    (with the shared part it includes) under ``cmake/``, relative to the SDK root.
    ``zig_cache``: for files that stay on this machine (the Conan profile's), this zig and that
    cache are named; the SDK's own file finds zig on the user's machine."""
    base = f"cmake/{toolchain.file.name}"
    lines = [
        "# SPDX-License-Identifier: Apache-2.0",
        f"# The toolchain this SDK was built with, for board {board.id} ({board.name}).",
        f"#   cmake -S APP -B build -DCMAKE_TOOLCHAIN_FILE=<sdk>/{TOOLCHAIN_FILE} "
        "-DCMAKE_PREFIX_PATH=<sdk>",
        f'set(EDGEPACK_ARCH_FLAGS "{" ".join(toolchain.arch_flags)}" CACHE STRING '
        '"Board CPU flags")',
    ]
    if toolchain.zig_target:
        lines.append(f'set(EDGEPACK_ZIG_TARGET "{toolchain.zig_target}" CACHE STRING '
                     f'"zig target: the board\'s glibc {board.min_glibc}")')
    if toolchain.zig_target and zig_cache is not None:  # this machine's zig and its cache
        lines.append(f'set(EDGEPACK_ZIG "{toolchain.cxx}" CACHE FILEPATH "zig executable")')
        lines.append(f'set(EDGEPACK_ZIG_CACHE "{zig_cache}" CACHE PATH "zig global cache")')
    lines.append(f"include(${{CMAKE_CURRENT_LIST_DIR}}/{base})")
    files = {TOOLCHAIN_FILE: "\n".join(lines) + "\n"}
    for path in shipped_toolchain_files(toolchain):
        files[f"cmake/{path.name}"] = path.read_text()
    return files


def _compiler_note(info: dict[str, Any]) -> str:
    tc = info["toolchain"]
    if tc.get("zig_target"):
        return ("It uses zig (`pip install ziglang`, or `zig` on PATH) to build against the "
                f"board's glibc ({tc['zig_target']}); C++ code in an app that links "
                "`edgepack_static` must use the same compiler (libc++), which the toolchain file "
                "sets up.")
    return f"It needs `{tc['triple']}-g++` on PATH."


def render_readme(info: dict[str, Any]) -> str:
    board = info["board"]
    version = info["sdk_version"]
    tc = info["toolchain"]
    flags = " ".join(info["flags"]) or "(none)"
    packages = ", ".join(f"{k} {v}" for k, v in info["sysroot"]["packages"].items())
    top = f"edgepack-sdk-{version}-{board}"
    glibc = info.get("glibc", {})
    need = glibc.get("required_glibc")
    loads = (f"The shipped binaries need glibc {need} or newer (the board has "
             f"{glibc.get('min_glibc')}) and no shared libstdc++." if need else
             "The shipped binaries need no shared C library version beyond the board's.")
    facts = ARCHES.get(info["arch"])
    qemu = (facts.qemu if facts else None) or ""
    multiarch = facts.triplet if facts else ""
    run_line = (f"`{qemu} -L /usr/{multiarch} $SDK/bin/edgepack-run --help`" if qemu
                else "`$SDK/bin/edgepack-run --help`")
    return f"""# edgepack SDK {version} for {board} ({info['board_name']})

Built with `{tc['compiler']}`, CPU flags `{flags}`, OpenSSL linked statically from Debian
{info['sysroot']['debian_arch']} packages ({packages}). {loads} Every input of this build is
listed in `BUILDINFO.json`.

## Contents
- `include/edgepack.h` (C ABI) and `include/edgepack.hpp` (C++17 RAII wrapper)
- `lib/libedgepack.so` (exports the C API only) and `lib/libedgepack_static.a` (one archive with
  OpenSSL's libcrypto inside)
- `lib/cmake/edgepack/`: the CMake package (targets `edgepack::edgepack`,
  `edgepack::edgepack_static`); it refuses a project built for another architecture
- `{TOOLCHAIN_FILE}`: the CMake toolchain this SDK was built with. {_compiler_note(info)}
- `{EXAMPLE_DIR}/`: a small app that loads an artifact and runs it
- `bin/edgepack-run`: loads an artifact and runs or benchmarks it on the board
- `bin/edgepack-agent` (when built): the device agent used by `edgepack bench`
Binaries are stripped; their debug information stays on the build host (`{board}.debug/`
beside the SDK).

## Build the example app
```sh
tar xzf {top}.tar.gz
SDK=$PWD/{top}
cmake -S $SDK/{EXAMPLE_DIR} -B build-app -DCMAKE_TOOLCHAIN_FILE=$SDK/{TOOLCHAIN_FILE} \\
  -DCMAKE_PREFIX_PATH=$SDK -DEDGEPACK_APP_STATIC=ON
cmake --build build-app
```
`build-app/example_app` runs on the board. In your own project:
```cmake
find_package(edgepack REQUIRED)
target_link_libraries(my_app PRIVATE edgepack::edgepack_static)  # or edgepack::edgepack
```
configured with the same two `-D` options.

## Use with Conan 2
`edgepack sdk conan --board {board}` creates the package `edgepack-sdk/{version}` in the local
Conan cache (offline) and prints the path of the host profile it generated from the board file;
`conan install . -pr:h <that profile> -pr:b default --build=never` then gives
`edgepack::edgepack` and `edgepack::edgepack_static` through `find_package(edgepack)`.

## Run without a board
`bin/edgepack-run` is linked statically against OpenSSL and the C++ library; under qemu-user
it runs on any Linux machine:
{run_line}
"""

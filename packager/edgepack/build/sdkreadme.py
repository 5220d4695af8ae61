# SPDX-License-Identifier: Apache-2.0
"""The README.md shipped in every per-board SDK: how an app team links it."""

from __future__ import annotations

from typing import Any


def render_readme(info: dict[str, Any]) -> str:
    board = info["board"]
    version = info["sdk_version"]
    tc = info["toolchain"]
    flags = " ".join(info["flags"]) or "(none)"
    packages = ", ".join(f"{k} {v}" for k, v in info["sysroot"]["packages"].items())
    toolchain_file = tc["file"]
    qemu = {"aarch64": "qemu-aarch64", "armhf": "qemu-arm"}.get(info["arch"], "")
    return f"""# edgepack SDK {version} for {board} ({info['board_name']})

Built with `{tc['compiler']}` ({tc['triple']}), CPU flags `{flags}`, OpenSSL linked statically
from Debian {info['sysroot']['debian_arch']} packages ({packages}). Every input of this build is
listed in `BUILDINFO.json`.

## Contents
- `include/edgepack.h` (C ABI) and `include/edgepack.hpp` (C++17 RAII wrapper)
- `lib/`: `libedgepack.so` and the static `libedgepack.a`
- `lib/cmake/edgepack/`: the CMake package
  (targets `edgepack::edgepack`, `edgepack::edgepack_static`)
- `bin/edgepack-run`: loads an artifact and runs or benchmarks it on the board
- `bin/edgepack-agent` (when built): the device agent used by `edgepack bench`

## Use with CMake
```cmake
find_package(edgepack REQUIRED)
target_link_libraries(my_app PRIVATE edgepack::edgepack_static)
```
Configure with the same toolchain and flags the SDK was built with:
```sh
cmake -S . -B build -G Ninja \\
  -DCMAKE_TOOLCHAIN_FILE=<edgepack>/toolchains/{toolchain_file} \\
  -DEDGEPACK_ARCH_FLAGS="{' '.join(info['flags'])}" \\
  -DCMAKE_PREFIX_PATH=$PWD/{board}
```

## Use with Conan 2
```sh
edgepack sdk conan --board {board}        # conan create into the local cache (offline)
conan install . -pr:h <edgepack>/toolchains/conan/{board} -pr:b default --build=never
```
then `find_package(edgepack)` as above with the generated `conan_toolchain.cmake`.

## Run without a board
`bin/edgepack-run` is statically linked against OpenSSL; under qemu-user it runs on any Linux
machine:
`{qemu} -L /usr/{tc['triple']} bin/edgepack-run --help`.
"""

# SPDX-License-Identifier: Apache-2.0
"""The layout and transformer kernels (strided copy, GELU, LayerNorm rows, GEMV) against naive
references: `sdk_templates/tests/vector_math_test.cpp` built with the host GCC (the kernels'
flags), with clang (zig) for aarch64, and with the Debian cross GCCs for aarch64 (NEON,
Cortex-A72) and armhf (NEON, ARMv8 32-bit), the ARM builds run under qemu-user."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgepack.build.sdkbuild import zig_cache
from edgepack.build.toolchains import resolve_toolchain
from edgepack.spec.boards import load_board

REPO = Path(__file__).resolve().parents[2]
SDK = REPO / "sdk_templates"
KERNELS = SDK / "src" / "runtime" / "kernels"
TEST_SOURCE = SDK / "tests" / "vector_math_test.cpp"
# gemm.cpp picks the micro-kernel set whose vector GELU and softmax rows vector_math.cpp runs;
# the generic set is NEON on ARM.
SOURCES = [TEST_SOURCE, KERNELS / "vector_math.cpp", KERNELS / "threadpool.cpp",
           KERNELS / "gemm.cpp", KERNELS / "microkernel_generic.cpp", KERNELS / "cpu_isa.cpp"]
# The x86 sets, each with its own flags (kernels/CMakeLists.txt).
X86_KERNELS = {"microkernel_avx2.cpp": ["-mavx2", "-mfma"],
               "microkernel_avx512.cpp": ["-mavx512f", "-mavx2", "-mfma",
                                          "-mprefer-vector-width=512"]}
BUILD = REPO / "build" / "tests-vector-math"
# The kernels library's flags (kernels/CMakeLists.txt): FMA contraction and no trapping math
# change what vectorises, so the test is built the way the library is.
FLAGS = ["-std=c++17", "-O3", "-ffp-contract=fast", "-fno-trapping-math", "-Wall", "-Wextra",
         "-Werror", f"-I{SDK / 'src'}"]

CROSS = {
    # name: (compiler, flags, qemu, sysroot)
    "aarch64": ("aarch64-linux-gnu-g++", ["-mcpu=cortex-a72"], "qemu-aarch64",
                "/usr/aarch64-linux-gnu"),
    "armhf": ("arm-linux-gnueabihf-g++",
              ["-mcpu=cortex-a53", "-mfpu=neon-fp-armv8", "-mfloat-abi=hard"], "qemu-arm",
              "/usr/arm-linux-gnueabihf"),
}


def _run(cmd: list[str], timeout: int = 600,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=timeout,
                          env=env)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def _check_output(out: str) -> None:
    assert " 0 failures" in out, out
    checks = int(out.strip().splitlines()[-1].split()[0])
    assert checks >= 300, out  # every case ran


def test_vector_math_native_gcc(tmp_path: Path) -> None:
    binary = tmp_path / "vector_math_test"
    objects = []
    for name, flags in X86_KERNELS.items():
        objects.append(tmp_path / f"{name}.o")
        _run(["g++", *FLAGS, *flags, "-c", str(KERNELS / name), "-o", str(objects[-1])])
    _run(["g++", *FLAGS, *map(str, SOURCES), *map(str, objects), "-o", str(binary), "-pthread"])
    # Every micro-kernel set this CPU has (EDGEPACK_CPU_ISA caps the choice).
    for cap in ("generic", "avx2", ""):
        _check_output(_run([str(binary)], timeout=300,
                           env={**os.environ, "EDGEPACK_CPU_ISA": cap}).stdout)


@pytest.mark.parametrize("arch", sorted(CROSS))
def test_vector_math_under_qemu(tmp_path: Path, arch: str) -> None:
    compiler, flags, qemu, sysroot = CROSS[arch]
    assert shutil.which(compiler), f"{compiler} missing: run scripts/setup.sh (cross toolchains)"
    assert shutil.which(qemu), f"{qemu} missing: run scripts/setup.sh (qemu-user)"
    binary = tmp_path / "vector_math_test"
    _run([compiler, *FLAGS, "-static", *flags, *map(str, SOURCES), "-o", str(binary),
          "-pthread"])
    _check_output(_run([qemu, "-L", sysroot, str(binary)], timeout=600).stdout)


def test_vector_math_aarch64_clang_under_qemu(tmp_path: Path) -> None:
    """zig's clang for hi3559a's glibc and CPU, as its board build uses it."""
    assert shutil.which("qemu-aarch64"), "qemu-aarch64 missing: run scripts/setup.sh (qemu-user)"
    binary = tmp_path / "vector_math_test"
    # The board builds' zig cache (tests/cross, tests/device): hi3559a's target and CPU, so
    # zig's glibc stubs and libc++ for them are built once per run, not once more here.
    env = {**os.environ, "ZIG_GLOBAL_CACHE_DIR": str(zig_cache(REPO / "build" / "cache"))}
    board = resolve_toolchain(load_board("hi3559a"))
    _run([sys.executable, "-m", "ziglang", "c++", "-target", str(board.zig_target),
          *board.arch_flags, *FLAGS, *map(str, SOURCES), "-o", str(binary), "-pthread"],
         env=env)
    _check_output(_run(["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu", str(binary)],
                       timeout=600).stdout)

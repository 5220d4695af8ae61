# SPDX-License-Identifier: Apache-2.0
"""The int8 GEMM kernel (sdk_templates/src/runtime/kernels/qgemm.h) against naive references:
exact int32 accumulation and fixed-point requantisation (sdk_templates/tests/qgemm_test.cpp),
and the int8 depthwise plane (qdepthwise.h), natively for every x86 micro-kernel this CPU has
(AVX-512 VNNI where present, AVX2 and portable, the lower ones chosen by EDGEPACK_CPU_ISA) and
cross-built for aarch64 and armhf (NEON widening multiply-accumulate), which run under
qemu-user; 1, 2 and 3 threads.

aarch64 is built through the kernels test project and the aarch64 toolchain file the way a
board build is: Cortex-A73/A53 flags (hi3559a) for everything, and the SDOT kernel's one file
with the flags the packager derives for a board with `cpu: features: [dotprod]`. The same
binary runs under qemu's `-cpu max` (has the dot product extension: the SDOT kernel) and
`-cpu cortex-a53` (has not: the run-time check falls back to the NEON kernel)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from sdk_host import run

from edgepack.build.toolchains import feature_flags, resolve_toolchain
from edgepack.spec.boards import load_board

REPO = Path(__file__).resolve().parents[2]
SDK = REPO / "sdk_templates"
KERNELS = SDK / "src" / "runtime" / "kernels"
BUILD = REPO / "build" / "tests-qgemm"
CMAKE = REPO / ".venv" / "bin" / "cmake"
ARMHF = ("arm-linux-gnueabihf-g++", ["-mcpu=cortex-a53", "-mfpu=neon-fp-armv8",
                                     "-mfloat-abi=hard"], "qemu-arm")
# The base flags of the aarch64 build: a board whose cores lack the dot product extension.
AARCH64_BASE = ("-mcpu=cortex-a73.cortex-a53",)


def _best_x86_qgemm() -> str:
    """The kernel qgemm.cpp picks on this CPU: AVX-512 VNNI needs avx512f/bw/vl/vnni (the CI
    machine may lack them; then the best is AVX2)."""
    flags: set[str] = set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    vnni = {"avx512f", "avx512bw", "avx512vl", "avx512_vnni"} <= flags
    return "avx512vnni" if vnni else "avx2"


@pytest.mark.parametrize("cap", ["generic", "avx2", None])
def test_qgemm_native(kernels_native: Path, cap: str | None) -> None:
    env = {k: v for k, v in os.environ.items() if k != "EDGEPACK_CPU_ISA"}
    if cap is not None:
        env["EDGEPACK_CPU_ISA"] = cap
    out = run([kernels_native / "qgemm_test"], env=env, timeout=120).stdout
    isa = cap or _best_x86_qgemm()
    print(f"qgemm kernel under test: {isa}")
    assert " 0 failures" in out, out
    assert f"qgemm: {isa}\n" in out, out


@pytest.fixture(scope="module")
def aarch64_dotprod() -> Path:
    """qgemm_test for aarch64 with the SDOT kernel, statically linked."""
    assert shutil.which("aarch64-linux-gnu-g++"), \
        "aarch64-linux-gnu-g++ missing: run scripts/setup.sh (cross toolchains)"
    build = BUILD / "aarch64-dotprod"
    dotprod = feature_flags(AARCH64_BASE, "dotprod", zig=False)
    run([str(CMAKE), "-S", str(REPO / "tests" / "sdk" / "kernels_project"), "-B", str(build),
         "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
         f"-DCMAKE_TOOLCHAIN_FILE={REPO / 'toolchains' / 'aarch64-linux-gnu.toolchain.cmake'}",
         f"-DEDGEPACK_ARCH_FLAGS={' '.join(AARCH64_BASE)}",
         f"-DEDGEPACK_DOTPROD_FLAGS={' '.join(dotprod)}", "-DCMAKE_EXE_LINKER_FLAGS=-static"])
    run([str(CMAKE), "--build", str(build), "-j2", "--target", "qgemm_test"])
    return build / "qgemm_test"


@pytest.mark.parametrize(("cpu", "cap", "isa"), [
    ("max", None, "dotprod"),  # ARMv8.2+ with the dot product extension
    ("cortex-a53", None, "neon"),  # ARMv8.0 without it: the run-time fallback
    ("max", "neon", "neon"),  # capped (EDGEPACK_CPU_ISA), so the fallback also runs on max
])
def test_qgemm_aarch64_under_qemu(aarch64_dotprod: Path, cpu: str, cap: str | None,
                                  isa: str) -> None:
    assert shutil.which("qemu-aarch64"), "qemu-aarch64 missing: run scripts/setup.sh (qemu-user)"
    env = {k: v for k, v in os.environ.items() if k != "EDGEPACK_CPU_ISA"}
    if cap:
        env["EDGEPACK_CPU_ISA"] = cap
    out = run(["qemu-aarch64", "-cpu", cpu, str(aarch64_dotprod)], env=env, timeout=300).stdout
    assert f"qgemm: {isa}\n" in out and " 0 failures" in out, out


def test_orin_board_build_compiles_the_sdot_kernel(tmp_path: Path) -> None:
    """The board that lists dotprod: its toolchain's flags compile the SDOT kernel's file (zig
    against the board's glibc, as `edgepack build` does) into SDOT instructions; a board
    without the feature gets no flags, so its build leaves the file out."""
    orin = resolve_toolchain(load_board("jetson-orin-nano"))
    assert orin.dotprod_flags == ("-mcpu=cortex_a78ae+dotprod",)
    assert resolve_toolchain(load_board("hi3559a")).dotprod_flags == ()
    obj = tmp_path / "qgemm_dotprod.o"
    run([orin.cxx, "c++", "-target", str(orin.zig_target), "-std=c++17", "-O3", "-Wall",
         "-Wextra", "-Werror", *orin.arch_flags, *orin.dotprod_flags, f"-I{SDK / 'src'}",
         "-c", str(KERNELS / "qgemm_dotprod.cpp"), "-o", str(obj)],
        env={**os.environ, "ZIG_GLOBAL_CACHE_DIR": str(BUILD / "zig-cache")}, timeout=600)
    dump = run(["aarch64-linux-gnu-objdump", "-d", str(obj)]).stdout
    assert dump.count("sdot\t") == 16, dump  # one per (row, panel vector) of the 4 x 16 tile


def test_qgemm_armhf_under_qemu(tmp_path: Path) -> None:
    compiler, flags, qemu = ARMHF
    assert shutil.which(compiler), f"{compiler} missing: run scripts/setup.sh (cross toolchains)"
    assert shutil.which(qemu), f"{qemu} missing: run scripts/setup.sh (qemu-user)"
    binary = tmp_path / "qgemm_test"
    run([compiler, "-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror", "-static", *flags,
         f"-I{SDK / 'src'}", str(SDK / "tests" / "qgemm_test.cpp"), str(KERNELS / "qgemm.cpp"),
         str(KERNELS / "qdepthwise.cpp"), str(KERNELS / "threadpool.cpp"),
         str(KERNELS / "quantize.cpp"), str(KERNELS / "cpu_isa.cpp"), "-pthread",
         "-o", str(binary)])
    out = run([qemu, str(binary)], timeout=300).stdout
    assert "qgemm: neon" in out and " 0 failures" in out

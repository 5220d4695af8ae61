# SPDX-License-Identifier: Apache-2.0
"""The int8 Winograd F(2x2, 3x3) kernel (sdk_templates/src/runtime/kernels/qwinograd.h) against
the exact direct convolution requantised by apply_multiplier(), the bytes the im2col + qgemm
path writes (sdk_templates/tests/qwinograd_test.cpp): natively for the AVX2 and portable GEMM
micro-kernels and cross-built for aarch64 and armhf (NEON vmlal_s16), which run under qemu-user;
1 and 3 threads. The op-level cases (QLinearConv through the runtime) are in
test_qlinear_conv.py."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from sdk_host import run

REPO = Path(__file__).resolve().parents[2]
SDK = REPO / "sdk_templates"
KERNELS = SDK / "src" / "runtime" / "kernels"
SOURCES = [SDK / "tests" / "qwinograd_test.cpp", KERNELS / "qwinograd.cpp", KERNELS / "qgemm.cpp",
           KERNELS / "threadpool.cpp", KERNELS / "cpu_isa.cpp"]
CROSS = {  # name: (compiler, flags, qemu)
    "aarch64": ("aarch64-linux-gnu-g++", ["-mcpu=cortex-a53"], "qemu-aarch64"),
    "armhf": ("arm-linux-gnueabihf-g++", ["-mcpu=cortex-a53", "-mfpu=neon-fp-armv8",
                                          "-mfloat-abi=hard"], "qemu-arm"),
}


@pytest.mark.parametrize("isa", ["generic", "best"])
def test_qwinograd_native(kernels_native: Path, isa: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "EDGEPACK_CPU_ISA"}
    if isa == "generic":
        env["EDGEPACK_CPU_ISA"] = "generic"
    out = run([kernels_native / "qwinograd_test"], env=env, timeout=120).stdout
    assert " 0 failures" in out, out
    assert f"qwinograd: {'generic' if isa == 'generic' else 'avx2'}\n" in out


@pytest.mark.parametrize("arch", sorted(CROSS))
def test_qwinograd_neon_under_qemu(arch: str, tmp_path: Path) -> None:
    compiler, flags, qemu = CROSS[arch]
    assert shutil.which(compiler), f"{compiler} missing: run scripts/setup.sh (cross toolchains)"
    assert shutil.which(qemu), f"{qemu} missing: run scripts/setup.sh (qemu-user)"
    binary = tmp_path / "qwinograd_test"
    run([compiler, "-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror", "-static", *flags,
         f"-I{SDK / 'src'}", *map(str, SOURCES), "-pthread", "-o", str(binary)], timeout=600)
    out = run([qemu, str(binary)], timeout=600).stdout
    assert "qwinograd: neon\n" in out and " 0 failures" in out, out

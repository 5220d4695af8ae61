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
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SDK = REPO / "sdk_templates"
KERNELS = SDK / "src" / "runtime" / "kernels"
BUILD = REPO / "build" / "tests-qwinograd"
CMAKE = REPO / ".venv" / "bin" / "cmake"
SOURCES = [SDK / "tests" / "qwinograd_test.cpp", KERNELS / "qwinograd.cpp", KERNELS / "qgemm.cpp",
           KERNELS / "threadpool.cpp"]
CROSS = {  # name: (compiler, flags, qemu)
    "aarch64": ("aarch64-linux-gnu-g++", ["-mcpu=cortex-a53"], "qemu-aarch64"),
    "armhf": ("arm-linux-gnueabihf-g++", ["-mcpu=cortex-a53", "-mfpu=neon-fp-armv8",
                                          "-mfloat-abi=hard"], "qemu-arm"),
}


def _run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def native() -> Path:
    build = BUILD / "native"
    _run([str(CMAKE), "-S", str(REPO / "tests" / "sdk" / "kernels_project"), "-B", str(build),
          "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release"])
    _run([str(CMAKE), "--build", str(build), "-j2", "--target", "qwinograd_test"])
    return build / "qwinograd_test"


@pytest.mark.parametrize("isa", ["generic", "best"])
def test_qwinograd_native(native: Path, isa: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "EDGEPACK_CPU_ISA"}
    if isa == "generic":
        env["EDGEPACK_CPU_ISA"] = "generic"
    out = _run([str(native)], env=env, timeout=120).stdout
    assert " 0 failures" in out, out
    assert f"qwinograd: {'generic' if isa == 'generic' else 'avx2'}\n" in out


@pytest.mark.parametrize("arch", sorted(CROSS))
def test_qwinograd_neon_under_qemu(arch: str, tmp_path: Path) -> None:
    compiler, flags, qemu = CROSS[arch]
    assert shutil.which(compiler), f"{compiler} missing: run scripts/setup.sh (cross toolchains)"
    assert shutil.which(qemu), f"{qemu} missing: run scripts/setup.sh (qemu-user)"
    binary = tmp_path / "qwinograd_test"
    _run([compiler, "-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror", "-static", *flags,
          f"-I{SDK / 'src'}", *map(str, SOURCES), "-pthread", "-o", str(binary)], timeout=600)
    out = _run([qemu, str(binary)], timeout=600).stdout
    assert "qwinograd: neon\n" in out and " 0 failures" in out, out

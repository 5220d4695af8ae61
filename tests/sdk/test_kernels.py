# SPDX-License-Identifier: Apache-2.0
"""The CPU kernels (packed GEMM, Conv, ConvTranspose, thread pool) against naive references.

Builds `sdk_templates/tests/kernels_test.cpp` natively (every x86 micro-kernel is exercised by
capping the run-time dispatch with EDGEPACK_CPU_ISA) and cross-compiled for aarch64 (NEON,
Cortex-A72) and armhf (NEON, ARMv8 32-bit), which run under qemu-user.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from sdk_host import run

REPO = Path(__file__).resolve().parents[2]
SDK = REPO / "sdk_templates"
KERNELS = SDK / "src" / "runtime" / "kernels"
TEST_SOURCE = SDK / "tests" / "kernels_test.cpp"
BUILD = REPO / "build" / "tests-kernels"

CROSS = {
    # name: (compiler, flags, qemu sysroot)
    "aarch64": ("aarch64-linux-gnu-g++", ["-mcpu=cortex-a72"], "/usr/aarch64-linux-gnu"),
    "armhf": (
        "arm-linux-gnueabihf-g++",
        ["-mcpu=cortex-a53", "-mfpu=neon-fp-armv8", "-mfloat-abi=hard"],
        "/usr/arm-linux-gnueabihf",
    ),
}


def _sources() -> list[Path]:
    return [*KERNELS.glob("*.cpp"), *KERNELS.glob("*.h"), TEST_SOURCE]


def _up_to_date(binary: Path) -> bool:
    if not binary.exists():
        return False
    built = binary.stat().st_mtime
    return all(src.stat().st_mtime <= built for src in _sources())


def _cross_build(arch: str) -> Path:
    compiler, flags, _ = CROSS[arch]
    assert shutil.which(compiler), f"{compiler} missing: run scripts/setup.sh (cross toolchains)"
    out = BUILD / arch / "kernels_test"
    if _up_to_date(out):
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    # x86 files and the SDOT file (built with its own flags: test_qgemm.py) stay out.
    sources = [str(p) for p in KERNELS.glob("*.cpp")
               if "avx" not in p.name and "dotprod" not in p.name]
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        tmp_bin = Path(tmp) / "kernels_test"
        run([compiler, "-std=c++17", "-O2", "-ffp-contract=fast", "-Wall", "-Wextra", "-static",
             *flags, f"-I{SDK / 'src'}", str(TEST_SOURCE), *sources, "-o", str(tmp_bin),
             "-pthread"])
        os.replace(tmp_bin, out)
    return out


@pytest.mark.parametrize("isa", ["generic", "avx2", "best"])
def test_kernels_native(kernels_native: Path, isa: str) -> None:
    env = dict(os.environ)
    env.pop("EDGEPACK_CPU_ISA", None)
    if isa != "best":
        env["EDGEPACK_CPU_ISA"] = isa
    out = run([kernels_native / "kernels_test"], env=env, timeout=300).stdout
    assert " 0 failures" in out
    if isa == "generic":
        assert "micro-kernel: generic" in out


@pytest.mark.parametrize("arch", sorted(CROSS))
def test_kernels_under_qemu(arch: str) -> None:
    binary = _cross_build(arch)
    qemu = {"aarch64": "qemu-aarch64", "armhf": "qemu-arm"}[arch]
    assert shutil.which(qemu), f"{qemu} missing: run scripts/setup.sh (qemu-user)"
    proc = subprocess.run([qemu, "-L", CROSS[arch][2], str(binary)], capture_output=True,
                         text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "micro-kernel: neon" in proc.stdout, proc.stdout
    assert " 0 failures" in proc.stdout

# SPDX-License-Identifier: Apache-2.0
"""Optional CPU extensions from the board file (``cpu: features: [dotprod]``) to the flags of
the one source file built for them (the SDOT int8 kernel) and on to the SDK's CMake configure.
The kernel itself is checked under qemu in tests/sdk/test_qgemm.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgepack.build.sdkbuild import build_key, cmake_args
from edgepack.build.sysroot import Sysroot
from edgepack.build.toolchains import feature_flags, resolve_toolchain
from edgepack.spec.boards import load_board


@pytest.mark.parametrize(("flags", "zig", "expected"), [
    (("-mcpu=cortex-a78ae",), False, ("-mcpu=cortex-a78ae+dotprod",)),
    (("-mcpu=cortex_a78ae",), True, ("-mcpu=cortex_a78ae+dotprod",)),
    (("-mcpu=cortex-a73.cortex-a53",), False, ("-mcpu=cortex-a73.cortex-a53+dotprod",)),
    (("-march=armv8.2-a", "-mtune=cortex-a55"), False,
     ("-march=armv8.2-a+dotprod", "-mtune=cortex-a55")),
    ((), False, ("-march=armv8-a+dotprod",)),
    ((), True, ("-mcpu=generic+dotprod",)),
])
def test_feature_flags(flags: tuple[str, ...], zig: bool, expected: tuple[str, ...]) -> None:
    assert feature_flags(flags, "dotprod", zig=zig) == expected


@pytest.mark.parametrize(("board_id", "features"), [
    ("jetson-orin-nano", ("dotprod",)),  # Cortex-A78AE: ARMv8.2 with the dot product
    ("hi3559a", ()),  # Cortex-A73 + A53: ARMv8.0
    ("rpi4", ()),  # Cortex-A72
    ("rpi4-armhf", ()),
    ("jetson-nano", ()),  # Cortex-A57
    ("host", ()),
])
def test_board_features(board_id: str, features: tuple[str, ...]) -> None:
    assert load_board(board_id).cpu.features == features


def test_dotprod_flags_reach_the_sdk_configure(tmp_path: Path) -> None:
    sysroot = Sysroot(path=tmp_path, debian_arch="arm64", packages={})
    orin = load_board("jetson-orin-nano")
    tc = resolve_toolchain(orin)
    assert tc.dotprod_flags == ("-mcpu=cortex_a78ae+dotprod",)  # zig's spelling
    assert "-DEDGEPACK_DOTPROD_FLAGS=-mcpu=cortex_a78ae+dotprod" in cmake_args(orin, tc, sysroot)
    hi = load_board("hi3559a")
    hi_tc = resolve_toolchain(hi)
    assert "-DEDGEPACK_DOTPROD_FLAGS=" in cmake_args(hi, hi_tc, sysroot)  # empty: not built
    # A change of the flags is a different build (the SDK cache key).
    plain = build_key(orin, tc, sysroot, [])
    assert build_key(orin, tc.__class__(**{**tc.__dict__, "dotprod_flags": ()}), sysroot,
                     []) != plain

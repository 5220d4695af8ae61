# SPDX-License-Identifier: Apache-2.0
"""Cross builds under qemu: each board's SDK is built once per test session and shared.

SDK outputs land under ``<repo>/build/cross/``; the cache (sysroots, zig's cache and CMake build
folders, so a later session reuses them and Ninja has nothing to do) is ``<repo>/build/cache``,
shared with the device, farm and plugin tests (gitignored).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edgepack.build.sdkbuild import SdkBuild, build_sdk
from edgepack.spec.boards import Board, load_board

REPO = Path(__file__).resolve().parents[2]
CROSS_ROOT = REPO / "build" / "cross"
# One board per architecture (aarch64, armv7 hard-float): each board costs a cold zig build of
# libc++ and musl for its CPU. rpi4 and the Jetsons share hi3559a's architecture and code paths;
# their board files and toolchain choice are checked in test_toolchains.py.
ARM_BOARDS = ("hi3559a", "rpi4-armhf")


# A board's first build from an empty cache includes zig's one-time libc/libc++ builds for its
# target (SDK) and musl target (agent): on a shared 2-core machine that exceeds pytest's
# 900 s default, so tests that may trigger a build get this limit instead.
COLD_BUILD_TIMEOUT_S = 2700


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "sdk_for" in fixtures or "cross_cache" in fixtures:
            item.add_marker(pytest.mark.timeout(COLD_BUILD_TIMEOUT_S))


@pytest.fixture(scope="session")
def cross_cache() -> Iterator[Path]:
    """``EDGEPACK_CACHE`` for the whole session (sysroots + build folders)."""
    # The same cache as tests/device, tests/farm and the pytest-plugin test: one build of each
    # board's SDK and one zig cache per checkout, whichever suite asks first.
    cache = REPO / "build" / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDGEPACK_CACHE", str(cache))
        yield cache


@pytest.fixture(scope="session")
def sdk_for(cross_cache: Path) -> Callable[[str], SdkBuild]:
    """``sdk_for(board_id)``: the SDK for a board, built on first request only."""
    builds: dict[str, SdkBuild] = {}

    def get(board_id: str) -> SdkBuild:
        if board_id not in builds:
            builds[board_id] = build_sdk(board_id, CROSS_ROOT / "sdk", jobs=2, cache=cross_cache)
        return builds[board_id]

    return get


def board(board_id: str) -> Board:
    return load_board(board_id)


def clean_env() -> dict[str, str]:
    """The environment without any QEMU_* left over from the caller."""
    return {k: v for k, v in os.environ.items() if not k.startswith("QEMU_")}

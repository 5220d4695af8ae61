# SPDX-License-Identifier: Apache-2.0
"""The bench preflight compares the device's glibc with what the board's edgepack-run needs
(read from the built binary), and refuses an older one naming both versions; the ELF reader
agrees with ``readelf -V`` on real binaries."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from edgepack.bench.runner import preflight
from edgepack.build.elfinfo import required_glibc, version_key, version_needs
from edgepack.build.sdkbuild import SdkBuild
from edgepack.device.client import Hello
from edgepack.spec.boards import load_board


def _hello(glibc: str) -> Hello:
    facts = {"machine": "aarch64", "glibc": glibc, "root_free_bytes": 1 << 30,
             "mem_available_kb": 1 << 20, "root": "/opt/edgepack"}
    return Hello(protocol=1, agent_version="test", agent_sha256="0" * 64, capabilities=(),
                 boot_id="b", session="s", max_payload=1 << 16, max_chunk=1 << 16,
                 max_upload=1 << 30, window=4, facts=facts)


def test_preflight_uses_what_the_runner_needs(sdk_for: Callable[[str], SdkBuild]) -> None:
    board = load_board("hi3559a")
    runner = sdk_for("hi3559a").sdk_dir / "bin" / "edgepack-run"
    need = required_glibc([runner])
    assert need is not None and version_key(need) <= version_key(board.min_glibc)
    assert preflight(_hello(board.min_glibc), board, 0, need) == []
    older = "2.16"  # older than any GLIBC_ an aarch64 binary can need (2.17 is the first)
    problems = preflight(_hello(older), board, 0, need)
    assert problems == [f"device glibc {older} is older than {need}, which edgepack-run needs "
                        f"(board hi3559a: min_glibc {board.min_glibc})"]


@pytest.mark.parametrize("path", ["/bin/ls", "/usr/bin/python3"])
def test_version_needs_match_readelf(path: str) -> None:
    out = subprocess.run(["readelf", "-W", "-V", path], capture_output=True, text=True,
                         check=True).stdout
    needs_part = out.split("Version needs section", 1)[1]
    expected: dict[str, set[str]] = {}
    current = ""
    for line in needs_part.splitlines():
        file_match = re.search(r"File: (\S+)", line)
        if file_match:
            current = file_match.group(1)
            expected[current] = set()
        name_match = re.search(r"Name: (\S+)", line)
        if name_match and current:
            expected[current].add(name_match.group(1))
    assert version_needs(Path(path)) == expected

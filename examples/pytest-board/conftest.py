# SPDX-License-Identifier: Apache-2.0
"""A tiny project packed once for the session's board (edgepack_device.board).

A real suite would pack its own project (``api.pack("path/to/project", ...)``) or take a
built ``.epk``; this one packs edgepack's tiny classifier (``edgepack.testing``) with fresh
keys, so it runs anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from edgepack.pytest_plugin import EdgepackDevice
from edgepack.testing import tiny_project


@dataclass(frozen=True)
class Packed:
    artifact: Path
    key: Path  # the recipient's private key: reads the golden reference on the host
    publisher: Path  # the publisher's public key: the device checks the signature with it


@pytest.fixture(scope="session")
def packed(tmp_path_factory: pytest.TempPathFactory, edgepack_device: EdgepackDevice) -> Packed:
    tiny = tiny_project(tmp_path_factory.mktemp("tiny"))
    return Packed(tiny.pack(board=edgepack_device.board), tiny.key, tiny.publisher)

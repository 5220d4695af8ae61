# SPDX-License-Identifier: Apache-2.0
"""``write_atomic``: whole files or none, the requested mode, no temp files left behind."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from edgepack.fsutil import write_atomic


def test_writes_bytes_and_text_with_mode(tmp_path: Path) -> None:
    write_atomic(tmp_path / "sub" / "a.bin", b"\x00\x01", 0o600)
    write_atomic(tmp_path / "b.txt", "héllo\n")
    assert (tmp_path / "sub" / "a.bin").read_bytes() == b"\x00\x01"
    assert stat.S_IMODE((tmp_path / "sub" / "a.bin").stat().st_mode) == 0o600
    assert (tmp_path / "b.txt").read_text("utf-8") == "héllo\n"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.bin", "b.txt", "sub"]


def test_failure_keeps_old_content_and_leaves_no_temp(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "report.json"
    target.write_text("old")

    def boom(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("edgepack.fsutil.os.replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]

# SPDX-License-Identifier: Apache-2.0
"""edgepack.api: the CLI's operations as functions with typed results (docs/python-api.md).

Bench and build through the API run in test_pytest_plugin.py and tests/farm (the plugin and
the labgrid target call api.bench); here: the fast paths and the errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edgepack import api
from edgepack.errors import SpecError, UsageError
from edgepack.testing import tiny_project


def _project(root: Path) -> Path:
    return tiny_project(root).root


def test_boards_are_typed_records() -> None:
    boards = {b.id: b for b in api.boards()}
    assert {"host", "hi3559a", "rpi4"} <= set(boards)
    assert boards["rpi4"].arch == "aarch64"


def test_pack_returns_the_result(tmp_path: Path) -> None:
    project = _project(tmp_path / "tiny")
    packed = api.pack(str(project), tmp_path / "out" / "tiny.epk", board="host")
    assert isinstance(packed, api.PackResult)
    assert packed.path.is_file() and packed.path.stat().st_size == packed.header.file_len
    summary = packed.summary()
    assert (summary["package"], summary["board"]) == ("tiny", "host")
    assert [s["name"] for s in summary["stages"]] == ["classifier", "classifier.post"]


def test_pack_errors_are_edgepack_errors(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"edgepack\.toml"):
        api.pack(tmp_path, tmp_path / "x.epk")


@pytest.mark.parametrize(("kw", "flag"), [({"iterations": 0}, "--iterations"),
                                          ({"warmup": -1}, "--warmup")])
def test_bench_refuses_bad_counts_before_reaching_a_board(
        tmp_path: Path, kw: dict[str, Any], flag: str) -> None:
    with pytest.raises(UsageError, match=flag):
        api.bench(tmp_path / "x.epk", board="host", target="virtual:host",
                  key=tmp_path / "k", publisher=tmp_path / "p", **kw)


def test_compare_refuses_an_invalid_report(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="base report"):
        api.compare_reports({"schema": "edgepack.report/2"}, {"schema": "edgepack.report/2"})


def test_device_up_and_down(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEPACK_STATE", str(tmp_path / "state"))
    board = api.device_up("host")
    try:
        assert isinstance(board, api.VirtualBoard) and board.board == "host"
        assert board.target.startswith(f"ssh://{board.user}@127.0.0.1:{board.port}")
        assert api.device_up("virtual:host").pids == board.pids  # running: reused
    finally:
        assert api.device_down("host") == ["host"]
    assert api.device_down() == []


def test_inspect_and_verify_return_records(tmp_path: Path) -> None:
    tiny = tiny_project(tmp_path / "tiny")
    artifact = tiny.pack(board="host")
    info = api.inspect(artifact)
    assert isinstance(info, api.ArtifactInfo)
    assert (info.package, info.version, info.version_counter) == ("tiny", "0.1.0", 1)
    assert info.signature_valid and info.manifest is None and info.size == artifact.stat().st_size
    assert "manifest" in info.sections[0]["name"] and len(info.recipients) == 1
    opened = api.inspect(artifact, key=tiny.key)
    assert opened.manifest is not None and opened.manifest["package"]["name"] == "tiny"
    checked = api.verify(artifact, publisher=tiny.publisher)
    assert isinstance(checked, api.Verification) and checked.signer == info.signer
    assert checked.to_json()["valid"] is True


def test_verify_by_another_publisher_is_artifact_invalid(tmp_path: Path) -> None:
    from edgepack.artifact import keys
    from edgepack.errors import ArtifactInvalid

    artifact = tiny_project(tmp_path / "tiny").pack(board="host")
    other = keys.generate_publisher_key(tmp_path / "other.key")
    with pytest.raises(ArtifactInvalid):
        api.verify(artifact, publisher=other)
    broken = tmp_path / "broken.epk"
    broken.write_bytes(artifact.read_bytes()[:100])
    with pytest.raises(ArtifactInvalid):
        api.inspect(broken)


def test_doctor_returns_the_checks() -> None:
    result = api.doctor("host")
    assert isinstance(result, api.DoctorResult) and result.checks
    assert all(isinstance(c, api.Check) for c in result.checks)
    assert result.ok == (not result.missing)
    assert result.to_json()["checks"][0].keys() >= {"area", "name", "ok", "fix"}

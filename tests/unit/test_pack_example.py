# SPDX-License-Identifier: Apache-2.0
"""Packing the example project end to end: two models with pre/post and a crop pipeline."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgepack.artifact import container as artifact
from edgepack.artifact import keys, manifest
from edgepack.artifact.pack import pack_project
from edgepack.cli import main
from example_project import example_project


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the example with its models generated and fresh keys."""
    return example_project(tmp_path_factory.mktemp("vision-demo"))


@pytest.fixture(scope="module")
def packed(project: Path) -> Path:
    out = project / "vision-demo.epk"
    assert main(["pack", str(project), "--out", str(out)]) == 0
    return out


def test_round_trip_with_each_recipient(project: Path, packed: Path) -> None:
    data = packed.read_bytes()
    publisher = keys.load_publisher_public(project / "keys" / "publisher.pub")
    opened = [artifact.open_artifact(data, keys.load_device_private(project / "keys" / k),
                                     publisher) for k in ("dev1.key", "dev2.key")]
    assert opened[0].sections == opened[1].sections
    doc = manifest.loads(opened[0].manifest_bytes)
    names = [s["name"] for s in doc["stages"]]
    for model in ("detector", "classifier"):
        assert model in names
    assert "detector.pre" in names and "detector.post" in names
    assert "classifier.crop" in names and "classifier.post" in names
    for stage in doc["stages"]:  # one copy per stage: the device graph (no board: all on cpu)
        assert stage["graph"] in opened[0].sections and "onnx" not in stage
    assert not [s for s in opened[0].sections if s.startswith("onnx/")]
    # golden data is present and matches its digests
    for kind in ("inputs", "outputs"):
        for ref in doc["golden"][kind].values():
            assert hashlib.sha256(opened[0].sections[ref["section"]]).hexdigest() == ref["sha256"]


def test_unpack_cli_writes_manifest_and_blobs(project: Path, packed: Path, tmp_path: Path) -> None:
    out = tmp_path / "unpacked"
    rc = main(["unpack", str(packed), "--key", str(project / "keys" / "dev2.key"),
               "--publisher", str(project / "keys" / "publisher.pub"), "--out", str(out)])
    assert rc == 0
    doc = json.loads((out / "manifest.json").read_text())
    assert doc["package"]["name"] == "vision-demo"
    golden = doc["golden"]["inputs"]
    first = next(iter(golden.values()))
    arr = np.load(out / first["section"])
    assert arr.dtype == np.uint8


def test_deterministic_manifest_and_plaintext(project: Path, packed: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.epk"
    pack_project(project, again)
    a, b = packed.read_bytes(), again.read_bytes()
    assert a != b  # fresh keys and nonces
    dev = keys.load_device_private(project / "keys" / "dev1.key")
    pub = keys.load_publisher_public(project / "keys" / "publisher.pub")
    first, second = artifact.open_artifact(a, dev, pub), artifact.open_artifact(b, dev, pub)
    assert first.sections == second.sections


def test_inspect_without_and_with_key(project: Path, packed: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(packed), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["package"]["name"] == "vision-demo"
    assert len(info["recipients"]) == 2
    assert info["signer"] == keys.fingerprint(
        keys.load_publisher_public(project / "keys" / "publisher.pub"))
    assert "manifest" not in info
    assert main(["inspect", str(packed), "--key", str(project / "keys" / "dev1.key"),
                 "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["manifest"]["schema"] == "edgepack.manifest/1"


def test_verify_cli(project: Path, packed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", str(packed), "--publisher",
                 str(project / "keys" / "publisher.pub")]) == 0
    assert "signature valid" in capsys.readouterr().out


def test_bad_recipient_file_leaves_nothing(project: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """A publisher key listed as a recipient: one clear error, no .epk written."""
    broken = tmp_path / "broken"
    shutil.copytree(project, broken)
    toml = broken / "edgepack.toml"
    text = toml.read_text()
    text = text.replace('"keys/dev2.pub"', '"keys/publisher.pub"')
    toml.write_text(text)
    out = tmp_path / "x.epk"
    rc = main(["pack", str(broken), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc != 0
    assert "publisher.pub" in err and "Traceback" not in err
    assert not out.exists()
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


def test_op_the_processor_cannot_run_is_refused(project: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """The detector's upsample (Resize) is not in the NNIE's op list: placing it there fails at
    pack time with the op, node, processor and board named, and nothing is written."""
    placed = tmp_path / "placed"
    shutil.copytree(project, placed)
    toml = placed / "edgepack.toml"
    toml.write_text(toml.read_text().replace('detector = "cpu"', 'detector = "npu"'))
    out = tmp_path / "x.epk"
    rc = main(["pack", str(placed), "--board", "hi3559a", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc != 0
    assert "placement.hi3559a.detector" in err
    assert "npu" in err and "Resize" in err and "hi3559a" in err
    assert "Traceback" not in err
    assert not out.exists()


def test_pack_for_board_records_placement(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "board.epk"
    result = pack_project(project, out, board="hi3559a")
    assert result.manifest["provenance"]["board"] == "hi3559a"
    assert {s["processor"] for s in result.manifest["stages"]} == {"cpu"}

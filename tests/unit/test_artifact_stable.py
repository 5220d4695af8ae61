# SPDX-License-Identifier: Apache-2.0
"""Stable sections through the packer: two packs of one project give byte-identical section
ciphertexts, and a release that changes one model's weights changes only the sections whose
plaintext changed (what a delta re-deploy relies on). ``--no-stable-sections`` turns it off."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import onnx
import pytest
from onnx import numpy_helper
from spec_project import write_valid_project

from edgepack.artifact import container as artifact
from edgepack.artifact import keys
from edgepack.artifact.pack import pack_project
from edgepack.cli import main


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_valid_project(tmp_path_factory.mktemp("stable"))


def ciphertexts(data: bytes) -> dict[str, bytes]:
    h = artifact.parse_header(data)
    return {s.name: data[s.offset:s.offset + s.ciphertext_size] for s in h.sections}


def plaintexts(data: bytes, project: Path) -> dict[str, bytes]:
    return artifact.open_artifact(
        data, keys.load_device_private(project / "keys" / "dev1.key"),
        keys.load_publisher_public(project / "keys" / "publisher.pub")).sections


@pytest.fixture(scope="module")
def first(project: Path, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    out = tmp_path_factory.mktemp("r1") / "a.epk"
    pack_project(project, out)
    return out.read_bytes()


def test_two_packs_of_one_project_share_every_section(project: Path, first: bytes,
                                                      tmp_path: Path) -> None:
    again = tmp_path / "b.epk"
    pack_project(project, again)
    second = again.read_bytes()
    assert first != second  # fresh content key, HPKE ephemeral keys, wrapped keys
    h1, h2 = artifact.parse_header(first), artifact.parse_header(second)
    assert h1.stable_sections and h2.stable_sections
    assert [s.name for s in h1.sections] == [s.name for s in h2.sections]  # same order
    assert ciphertexts(first) == ciphertexts(second)  # manifest included: nothing varies
    assert first[h1.header_len:-64] == second[h2.header_len:-64]


def test_changed_weights_change_only_their_sections(project: Path, first: bytes,
                                                    tmp_path: Path) -> None:
    """The classifier gets new weights: its graph, the golden outputs it produces and the
    manifest (the model's digest) change; the detector's sections keep their bytes."""
    changed = tmp_path / "changed"
    shutil.copytree(project, changed)
    model_path = changed / "models" / "classifier.onnx"
    model = onnx.load(str(model_path))
    w = numpy_helper.to_array(model.graph.initializer[0]).copy()
    w[0, 0] += 0.5
    model.graph.initializer[0].CopyFrom(numpy_helper.from_array(w, "w"))
    onnx.save(model, str(model_path))
    out = tmp_path / "changed.epk"
    pack_project(changed, out)
    second = out.read_bytes()

    c1, c2 = ciphertexts(first), ciphertexts(second)
    p1, p2 = plaintexts(first, project), plaintexts(second, project)
    assert list(c1) == list(c2)
    same = {n for n in c1 if c1[n] == c2[n]}
    # ciphertext equal exactly where the plaintext is equal
    assert same == {n for n in p1 if p1[n] == p2[n]}
    assert "manifest" not in same
    changed_graphs = {n for n in c1 if n.startswith("graph/") and n not in same}
    assert changed_graphs == {"graph/classifier"}
    assert {"graph/detector", "graph/detector.pre", "graph/detector.post"} <= same
    assert any(n.startswith("golden/") for n in same)


def test_no_stable_sections_flag(project: Path, first: bytes, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "f0.epk"
    assert main(["pack", str(project), "--out", str(out), "--no-stable-sections"]) == 0
    data = out.read_bytes()
    (tmp_path / "stable.epk").write_bytes(first)
    capsys.readouterr()
    for path, stable in ((out, False), (tmp_path / "stable.epk", True)):
        assert main(["inspect", str(path), "--json"]) == 0
        described = json.loads(capsys.readouterr().out)
        assert described["stable_sections"] is stable and described["block_signature"] is True
        assert main(["inspect", str(path)]) == 0
        assert ("stable sections" in capsys.readouterr().out) is stable
    h = artifact.parse_header(data)
    assert not h.stable_sections and h.flags == artifact.FLAG_BLOCK_SIGNATURE  # blocks stay
    assert plaintexts(data, project) == plaintexts(first, project)
    c0, c1 = ciphertexts(data), ciphertexts(first)
    assert not [n for n in c0 if c0[n] == c1[n]]

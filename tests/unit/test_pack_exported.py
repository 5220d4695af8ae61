# SPDX-License-Identifier: Apache-2.0
"""``edgepack pack`` on exported models as they come: a dynamo-style export (opset 18, weights
in model.onnx.data beside it) packs from any working directory and its data file is in the
provenance; a data-dependent model is one ``edgepack: error:`` line, exit code 4."""

from __future__ import annotations

import hashlib
from pathlib import Path

import onnx
import pytest
from exported_graphs import nonzero_gather, yolov8_head

from edgepack.artifact import container as artifact
from edgepack.artifact import keys, manifest
from edgepack.cli import main
from edgepack.errors import ExitCode

TOML = """\
[package]
name = "exported"
version = "1.0.0"
version_counter = 1

[keys]
publisher = "keys/publisher.key"
recipients = ["keys/dev1.pub"]

[[models]]
name = "head"
path = "{path}"
  [[models.inputs]]
  name = "x"
  shape = {shape}

[pipeline]
stages = [ {{ model = "head" }} ]
"""


def project(root: Path, path: str, shape: list[int]) -> Path:
    keys.generate_publisher_key(root / "keys" / "publisher.key")
    keys.generate_device_key(root / "keys" / "dev1.key")
    (root / "edgepack.toml").write_text(TOML.format(path=path, shape=shape))
    return root


def test_dynamo_style_export_packs_from_elsewhere(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "proj"
    (root / "export").mkdir(parents=True)
    model = yolov8_head(channels=32)
    model.opset_import[0].version = 18
    onnx.save_model(model, root / "export" / "model.onnx", save_as_external_data=True,
                    all_tensors_to_one_file=True, location="model.onnx.data", size_threshold=0)
    project(root, "export/model.onnx", [1, 32, 8, 8])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    out = tmp_path / "out.epk"
    assert main(["pack", str(root), "--out", str(out)]) == 0
    opened = artifact.open_artifact(out.read_bytes(),
                                    keys.load_device_private(root / "keys" / "dev1.key"),
                                    keys.load_publisher_public(root / "keys" / "publisher.pub"))
    inputs = manifest.loads(opened.manifest_bytes)["provenance"]["inputs"]
    data = (root / "export" / "model.onnx.data").read_bytes()
    assert inputs["export/model.onnx.data"] == hashlib.sha256(data).hexdigest()
    assert set(inputs) == {"edgepack.toml", "export/model.onnx", "export/model.onnx.data"}


def test_data_dependent_model_is_one_error_line(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "proj"
    (root / "models").mkdir(parents=True)
    onnx.save(nonzero_gather(), str(root / "models" / "nz.onnx"))
    project(root, "models/nz.onnx", [1, 6])
    assert main(["pack", str(root), "--out", str(tmp_path / "x.epk")]) == ExitCode.MODEL
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [i for i, line in enumerate(lines) if line.startswith("edgepack: error: ")]
    assert len(errors) == 1, err  # progress lines come before it
    assert "'/post/NonZero'" in lines[errors[0]] and "nz.onnx" in lines[errors[0]]
    assert all(line.startswith("  hint: ") for line in lines[errors[0] + 1:]), err
    assert "Traceback" not in err and not (tmp_path / "x.epk").exists()

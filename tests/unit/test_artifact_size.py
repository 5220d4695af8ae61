# SPDX-License-Identifier: Apache-2.0
"""The artifact stores each model once and a small golden reference: a real ResNet-18
(refilled weights) packs to at most 1.05x its ONNX file, and so do the two models whose golden
data weighs most against their weights (MobileViT-XXS: a 256x256 float input for 5 MB of
weights; YOLO11n-seg: a 320x320 input and two large outputs); tests/sdk/test_real_models.py
checks every real model. Placed on a processor whose backend converts from ONNX (the Hi3559A's
NNIE) the stage also carries its ONNX graph, and says so in the manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgepack.artifact import container as artifact
from edgepack.artifact import keys, manifest
from edgepack.artifact.pack import pack_project
from real_projects import write_project

TARGET = 1.05


@pytest.fixture(scope="module")
def resnet18(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_project(tmp_path_factory.mktemp("resnet18"), "resnet18")


def _opened(root: Path, epk: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    opened = artifact.open_artifact(epk.read_bytes(),
                                    keys.load_device_private(root / "keys" / "dev1.key"),
                                    keys.load_publisher_public(root / "keys" / "publisher.pub"))
    return manifest.loads(opened.manifest_bytes), dict(opened.sections)


def test_resnet18_artifact_is_at_most_105_percent_of_the_onnx(resnet18: Path,
                                                               tmp_path: Path) -> None:
    out = tmp_path / "resnet18.epk"
    pack_project(resnet18, out)
    onnx_size = (resnet18 / "models" / "resnet18.onnx").stat().st_size
    ratio = out.stat().st_size / onnx_size
    assert onnx_size > 40e6  # the real weights are there: the comparison means something
    print(f"resnet18: ONNX {onnx_size} B, artifact {out.stat().st_size} B ({ratio:.4f} x)")
    assert ratio <= TARGET, f"artifact {out.stat().st_size} B = {ratio:.3f} x the ONNX"
    _, sections = _opened(resnet18, out)
    assert not [s for s in sections if s.startswith("onnx/")]


@pytest.mark.parametrize("name", ["mobilevit_xxs", "yolo11n_seg"])
def test_golden_heavy_models_are_at_most_105_percent(tmp_path: Path, name: str) -> None:
    root = write_project(tmp_path / "project", name)
    out = tmp_path / f"{name}.epk"
    pack_project(root, out)
    onnx_size = (root / "models" / f"{name}.onnx").stat().st_size
    ratio = out.stat().st_size / onnx_size
    print(f"{name}: ONNX {onnx_size} B, artifact {out.stat().st_size} B ({ratio:.4f} x)")
    assert ratio <= TARGET, f"artifact {out.stat().st_size} B = {ratio:.3f} x the ONNX"
    golden = _opened(root, out)[0]["golden"]
    assert all("scale" in e for e in golden["inputs"].values())  # float inputs as int8 codes
    summarised = {n for n, e in golden["outputs"].items() if "summary" in e}
    assert summarised == ({"output0", "output1"} if name == "yolo11n_seg" else set())


def test_stage_on_a_vendor_converter_keeps_its_onnx(resnet18: Path, tmp_path: Path) -> None:
    # The NNIE computes in int8 only: the model placed there needs [models.quantize].
    calib = resnet18 / "calib"
    calib.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(2):
        np.save(calib / f"input_{i}.npy", rng.standard_normal((1, 3, 224, 224), np.float32))
    toml = resnet18 / "edgepack.toml"
    toml.write_text(toml.read_text() + '  [models.quantize]\n  dtype = "int8"\n'
                    '  calibration = "calib"\n  min_cosine = 0.9\n'
                    '\n[placement.hi3559a]\nresnet18 = "npu"\n')
    out = tmp_path / "resnet18-npu.epk"
    pack_project(resnet18, out, board="hi3559a")
    doc, sections = _opened(resnet18, out)
    stages = {s["name"]: s for s in doc["stages"]}
    assert stages["resnet18"]["processor"] == "npu"
    assert stages["resnet18"]["onnx"] == "onnx/resnet18"
    assert [s for s in sections if s.startswith("onnx/")] == ["onnx/resnet18"]

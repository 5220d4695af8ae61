# SPDX-License-Identifier: Apache-2.0
"""The artifact stores each model once: a real ResNet-18 (refilled weights) packs to at most
1.05x its ONNX file; placed on a processor whose backend converts from ONNX (the Hi3559A's
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

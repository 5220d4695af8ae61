# SPDX-License-Identifier: Apache-2.0
"""Real exported graphs (tests/data/real_models, weights refilled by ``real_models``) through
ingest: the shape chains of YOLOv8's Detect head, ShuffleNet's channel shuffle and ViT's
attention fold, every tensor gets a static shape, and the result matches the original; torch's
dynamo export (opset 18, weights in model.onnx.data) comes down to opset 17."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import version_converter

from edgepack.model.equivalence import run_onnxruntime
from edgepack.model.ingest import IngestedModel, ingest_model
from edgepack.spec.project import InputSpec, ModelSpec
from real_models import BY_NAME, load_real_model, save_real_model


def ingest(name: str, folder: Path) -> IngestedModel:
    spec = BY_NAME[name]
    path = save_real_model(name, folder)
    return ingest_model(ModelSpec(name, path, tuple(
        InputSpec(k, v) for k, v in spec.inputs.items())))


@pytest.mark.parametrize("name", ["yolov8n", "shufflenet_v2_x1_0", "vit_tiny_patch16_224",
                                  "mobilenet_v3_small_dynamo"])
def test_real_graph_ingests_with_static_shapes_and_matches(tmp_path: Path, name: str) -> None:
    got = ingest(name, tmp_path)
    spec = BY_NAME[name]
    assert got.source_opset == spec.opset and got.opset == 17
    assert list(got.data_files) == (["model.onnx.data"] if spec.external_data else [])
    ops = {op for op, _ in got.ops}
    assert not ops & {"Shape", "ConstantOfShape", "Range"}
    for value in got.onnx.graph.value_info:
        assert all(d.HasField("dim_value") for d in value.type.tensor_type.shape.dim)
    feeds = {k: np.random.default_rng(5).random(v, np.float32) for k, v in spec.inputs.items()}
    expected = run_onnxruntime(load_real_model(name), feeds)
    actual = run_onnxruntime(got.onnx, feeds)
    for e, a in zip(expected, actual, strict=True):
        np.testing.assert_allclose(a, e, rtol=1e-4, atol=1e-4)
    assert [o.shape for o in got.outputs] == [e.shape for e in expected]


@pytest.mark.parametrize(("name", "opset"), [("yolov8n", 21), ("shufflenet_v2_x1_0", 23)])
def test_real_graph_lifted_to_a_newer_opset_comes_back_to_17(tmp_path: Path, name: str,
                                                             opset: int) -> None:
    """onnx's version converter lifts the graph (Split and Resize, ReduceMean take their newer
    forms); ingest brings it back to opset 17 and it still matches the opset-17 original."""
    original = load_real_model(name)
    lifted = version_converter.convert_version(original, opset)
    path = tmp_path / "lifted.onnx"
    onnx.save(lifted, str(path))
    spec = BY_NAME[name]
    got = ingest_model(ModelSpec(name, path, tuple(
        InputSpec(k, v) for k, v in spec.inputs.items())))
    assert got.source_opset == opset and got.opset == 17
    feeds = {k: np.random.default_rng(6).random(v, np.float32) for k, v in spec.inputs.items()}
    for e, a in zip(run_onnxruntime(original, feeds), run_onnxruntime(got.onnx, feeds),
                    strict=True):
        np.testing.assert_allclose(a, e, rtol=1e-4, atol=1e-4)

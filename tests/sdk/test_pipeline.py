# SPDX-License-Identifier: Apache-2.0
"""The pipeline executor: a hand-written manifest with two stages (a detector-like stage with
NonMaxSuppression producing dynamic rows, then a per-row classifier as a `map` step), run by
the C++ test program `pipeline_test` with sections read from files, checked against
onnxruntime + numpy."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import onnx
from graph_runner import run_ort
from onnx import TensorProto, helper, numpy_helper
from sdk_host import SdkBuild

from edgepack.lower.lowering import lower

RNG = np.random.default_rng(3)


def _model(nodes: list[onnx.NodeProto], inputs: list[onnx.ValueInfoProto], outputs: list[str],
           inits: dict[str, np.ndarray | np.generic]) -> onnx.ModelProto:
    g = helper.make_graph(
        nodes, "stage", inputs,
        [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in outputs],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return onnx.shape_inference.infer_shapes(m)


def _detector() -> onnx.ModelProto:
    nodes = [
        helper.make_node("NonMaxSuppression", ["boxes", "scores", "k", "iou", "th"], ["sel"]),
        helper.make_node("Gather", ["sel", "two"], ["idx"], axis=1),
        helper.make_node("Squeeze", ["boxes", "axes0"], ["b2"]),
        helper.make_node("Gather", ["b2", "idx"], ["rois"], axis=0),
    ]
    return _model(nodes, [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, 12, 4]),
                          helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 1, 12])],
                  ["rois"], {"k": np.int64(12), "iou": np.float32(0.1), "th": np.float32(0.3),
                             "two": np.int64(2), "axes0": np.array([0], np.int64)})


W = RNG.standard_normal((4, 3)).astype(np.float32)


def _classifier() -> onnx.ModelProto:
    nodes = [helper.make_node("MatMul", ["roi", "w"], ["m"]),
             helper.make_node("Softmax", ["m"], ["prob"], axis=-1)]
    return _model(nodes, [helper.make_tensor_value_info("roi", TensorProto.FLOAT, [1, 4])],
                  ["prob"], {"w": W})


def _desc(name: str, dtype: str, shape: list[int], dynamic: bool = False) -> dict[str, object]:
    d: dict[str, object] = {"name": name, "dtype": dtype, "shape": shape, "layout": None}
    if dynamic:
        d["dynamic_dim0"] = True
    return d


def test_two_stages_with_map_step(sdk_host: SdkBuild, tmp_path: Path) -> None:
    sections = tmp_path / "sections"
    sections.mkdir()
    (sections / "graph_det").write_bytes(lower(_detector()))
    (sections / "graph_cls").write_bytes(lower(_classifier()))
    manifest = {
        "schema": "edgepack.manifest/1",
        "stages": [
            {"name": "det", "kind": "model", "model": "det", "processor": "cpu",
             "onnx": "onnx/det", "graph": "graph/det",
             "inputs": [_desc("boxes", "float32", [1, 12, 4]),
                        _desc("scores", "float32", [1, 1, 12])],
             "outputs": [_desc("rois", "float32", [12, 4], dynamic=True)]},
            {"name": "cls", "kind": "model", "model": "cls", "processor": "cpu",
             "onnx": "onnx/cls", "graph": "graph/cls",
             "inputs": [_desc("roi", "float32", [1, 4])],
             "outputs": [_desc("prob", "float32", [1, 3])]},
        ],
        "pipeline": {
            "inputs": [_desc("boxes", "float32", [1, 12, 4]),
                       _desc("scores", "float32", [1, 1, 12])],
            "steps": [
                {"stage": "det", "bind": {"boxes": "boxes", "scores": "scores"}},
                {"stage": "cls", "bind": {"roi": "det:rois"}, "map": True},
            ],
            "outputs": {"rois": "det:rois", "probs": "cls:prob"},
        },
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    xy = RNG.uniform(0, 20, (1, 12, 2)).astype(np.float32)
    boxes = np.concatenate([xy, xy + RNG.uniform(2, 8, (1, 12, 2)).astype(np.float32)], axis=2)
    scores = RNG.uniform(0, 1, (1, 1, 12)).astype(np.float32)
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    np.save(tmp_path / "in" / "boxes.npy", boxes)
    np.save(tmp_path / "in" / "scores.npy", scores)
    proc = subprocess.run(
        [str(sdk_host.build / "tests" / "pipeline_test"), str(tmp_path / "manifest.json"),
         str(sections), str(tmp_path / "in"), str(tmp_path / "out")],
        capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    rois = run_ort(_detector(), {"boxes": boxes, "scores": scores})["rois"]
    assert 0 < len(rois) < 12
    logits = rois @ W
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs = e / e.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(np.load(tmp_path / "out" / "rois.npy"), rois)
    np.testing.assert_allclose(np.load(tmp_path / "out" / "probs.npy"), probs, rtol=1e-4,
                               atol=1e-5)
    steps = [line.split() for line in (tmp_path / "out" / "timings.txt").read_text().splitlines()]
    assert [s[0] for s in steps] == ["det", "cls"]
    assert int(steps[1][1]) == len(rois)  # one classifier run per detected row


def test_manifest_errors_name_the_field(sdk_host: SdkBuild, tmp_path: Path) -> None:
    sections = tmp_path / "sections"
    sections.mkdir()
    (sections / "graph_cls").write_bytes(lower(_classifier()))
    manifest = {
        "schema": "edgepack.manifest/1",
        "stages": [{"name": "cls", "graph": "graph/cls",
                    "inputs": [_desc("roi", "float32", [1, 4])],
                    "outputs": [_desc("prob", "float32", [1, 3])]}],
        "pipeline": {"inputs": [_desc("x", "float32", [1, 4])],
                     "steps": [{"stage": "cls", "bind": {"roi": "nothing:here"}}],
                     "outputs": {}},
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    proc = subprocess.run(
        [str(sdk_host.build / "tests" / "pipeline_test"), str(tmp_path / "manifest.json"),
         str(sections), str(tmp_path), str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "pipeline.steps[cls].bind.roi" in proc.stderr and "nothing:here" in proc.stderr

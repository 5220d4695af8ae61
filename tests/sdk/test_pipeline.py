# SPDX-License-Identifier: Apache-2.0
"""The pipeline executor: a hand-written manifest with two stages (a detector-like stage with
NonMaxSuppression producing dynamic rows, then a per-row classifier as a `map` step), run by
the C++ test program `pipeline_test` with sections read from files, checked against
onnxruntime + numpy."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
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


def _relu_stages() -> dict[str, onnx.ModelProto]:
    """Three stages over one frame-like input x [3, 8] and a row input [R <= 4, 8]: "a" and "b"
    both read x (Relu, the test plugin's op, straight from the graph input, then CPU ops), "b"
    also reads a's output, "c" is a map over the rows."""
    def x_info(name: str, shape: list[int]) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)

    a = _model([helper.make_node("Relu", ["x"], ["r"]),
                helper.make_node("Add", ["r", "x"], ["ya"])], [x_info("x", [3, 8])], ["ya"], {})
    b = _model([helper.make_node("Relu", ["x"], ["rb"]),
                helper.make_node("Relu", ["ya"], ["rb2"]),
                helper.make_node("Mul", ["rb", "rb2"], ["m"]),
                helper.make_node("Add", ["m", "x"], ["yb"])],
               [x_info("x", [3, 8]), x_info("ya", [3, 8])], ["yb"], {})
    c = _model([helper.make_node("Relu", ["row"], ["r"]),
                helper.make_node("Neg", ["r"], ["yc"])], [x_info("row", [1, 8])], ["yc"], {})
    return {"a": a, "b": b, "c": c}


def _relu_reference(x: np.ndarray, rows: np.ndarray) -> dict[str, np.ndarray]:
    ya = np.maximum(x, 0) + x
    return {"ya": ya, "yb": np.maximum(x, 0) * np.maximum(ya, 0) + x,
            "yc": -np.maximum(rows, 0)}


@pytest.mark.parametrize("plugin", [False, True], ids=["cpu", "plugin"])
def test_stages_read_bound_tensors_in_place(sdk_host: SdkBuild, tmp_path: Path,
                                            plugin: bool) -> None:
    """Two stages read one pipeline input, a stage reads another's output and a map step reads
    rows: each where it lies (the plugin's partitions see the pipeline's own buffer and the
    rows' addresses), with the numbers of the copies, and a second run with new inputs computes
    on the new data."""
    sections = tmp_path / "sections"
    sections.mkdir()
    stages = _relu_stages()
    for name, model in stages.items():
        (sections / f"graph_{name}").write_bytes(lower(model))
    f32 = "float32"
    manifest = {
        "schema": "edgepack.manifest/1",
        "stages": [
            {"name": "a", "graph": "graph/a", "inputs": [_desc("x", f32, [3, 8])],
             "outputs": [_desc("ya", f32, [3, 8])]},
            {"name": "b", "graph": "graph/b",
             "inputs": [_desc("x", f32, [3, 8]), _desc("ya", f32, [3, 8])],
             "outputs": [_desc("yb", f32, [3, 8])]},
            {"name": "c", "graph": "graph/c", "inputs": [_desc("row", f32, [1, 8])],
             "outputs": [_desc("yc", f32, [1, 8])]},
        ],
        "pipeline": {
            "inputs": [_desc("x", f32, [3, 8]), _desc("rows", f32, [4, 8], dynamic=True)],
            "steps": [
                {"stage": "a", "bind": {"x": "x"}},
                {"stage": "b", "bind": {"x": "x", "ya": "a:ya"}},
                {"stage": "c", "bind": {"row": "rows"}, "map": True},
            ],
            "outputs": {"ya": "a:ya", "yb": "b:yb", "yc": "c:yc"},
        },
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    feeds = []
    for run, n_rows in enumerate((3, 2)):
        x = RNG.standard_normal((3, 8)).astype(np.float32)
        rows = RNG.standard_normal((n_rows, 8)).astype(np.float32)
        for d in (f"in{run}", f"out{run}"):
            (tmp_path / d).mkdir()
        np.save(tmp_path / f"in{run}" / "x.npy", x)
        np.save(tmp_path / f"in{run}" / "rows.npy", rows)
        feeds.append((x, rows))
    relu = sdk_host.build / "tests" / "libedgepack_backend_test_relu.so"
    proc = subprocess.run(
        [str(sdk_host.build / "tests" / "pipeline_test"), str(tmp_path / "manifest.json"),
         str(sections), str(tmp_path / "in0"), str(tmp_path / "out0"),
         *(["--backend", str(relu)] if plugin else []),
         "--rerun", str(tmp_path / "in1"), str(tmp_path / "out1")],
        capture_output=True, text=True,
        env={**os.environ, "EDGEPACK_TEST_RELU_TRACE_RUNS": "1"})
    assert proc.returncode == 0, proc.stderr
    for run, (x, rows) in enumerate(feeds):
        for name, want in _relu_reference(x, rows).items():
            np.testing.assert_allclose(np.load(tmp_path / f"out{run}" / f"{name}.npy"), want,
                                       rtol=1e-6, err_msg=f"run {run}: {name}")
    if not plugin:
        return
    # (partition input name, address) per plugin run: two runs with 3 rows, then one with 2.
    reads = [(m.group(1), int(m.group(2), 16)) for m in
             re.finditer(r"input '(\w+)' at (0x[0-9a-f]+)", proc.stderr)]
    assert len(reads) == 2 * (1 + 2 + 3) + (1 + 2 + 2), proc.stderr
    x_at = {at for name, at in reads if name == "x"}
    assert len(x_at) == 1, "stages a and b should both read the pipeline's x where it lies"
    row_at = [at for name, at in reads if name == "row"]
    assert row_at[:3] == [row_at[0] + 32 * r for r in range(3)], "map rows read in place"
    assert row_at[3:6] == row_at[:3] and row_at[6:] == row_at[:2]

# SPDX-License-Identifier: Apache-2.0
"""Cutting a model (``outputs = [...]`` in [[models]]): an SSD-like export whose head is
followed by data-dependent post-processing (a score threshold through NonZero, as torchvision's
detection exports do) is refused with the spec key in the hint, and packs when cut at its head
and finished by edgepack's NMS; the pipeline matches a numpy reference of the same NMS fed by
onnxruntime on the original export's head tensor."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import prepost_reference as ref
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgepack.artifact import keys
from edgepack.errors import SpecError
from edgepack.model.cut import cut_model
from edgepack.model.reference import run_pipeline
from edgepack.model.stages import build_stage_plan
from edgepack.spec.loader import load_spec
from edgepack.spec.project import DetectionPost

CLASSES = 3
SIZE = 64
GRID = 8  # Conv stride 8 -> 8 x 8 = 64 anchors


def ssd_like() -> onnx.ModelProto:
    """images [1,3,64,64] -> Conv -> per anchor: box offsets decoded against a fixed anchor
    grid (xyxy, pixels) and softmax class scores -> ``head`` [1, 64, 4 + 3] -> score threshold
    -> NonZero -> GatherND -> ``detections`` [K, 7] (data-dependent K)."""
    rng = np.random.default_rng(3)
    n = GRID * GRID
    centres = (np.stack(np.meshgrid(np.arange(GRID), np.arange(GRID), indexing="xy"), -1)
               .reshape(1, n, 2).astype(np.float32) + 0.5) * (SIZE / GRID)
    anchors = np.concatenate([centres - 6.0, centres + 6.0], axis=2)  # [1, n, 4] xyxy
    weight = rng.standard_normal((4 + CLASSES, 3, 8, 8)).astype(np.float32) * 0.05
    weight[4:] *= 10  # class logits with a spread of ~3: a few confident anchors
    inits = [
        numpy_helper.from_array(weight, "head.weight"),
        numpy_helper.from_array(np.array([1, 4 + CLASSES, n], np.int64), "head.shape"),
        numpy_helper.from_array(np.array([4, CLASSES], np.int64), "head.split"),
        numpy_helper.from_array(anchors, "anchors"),
        numpy_helper.from_array(np.array(4.0, np.float32), "box_scale"),
        numpy_helper.from_array(np.array(0.5, np.float32), "post.threshold"),
    ]
    nodes = [
        helper.make_node("Conv", ["images", "head.weight"], ["feat"], strides=[8, 8],
                         name="/head/Conv"),
        helper.make_node("Reshape", ["feat", "head.shape"], ["flat"], name="/head/Reshape"),
        helper.make_node("Transpose", ["flat"], ["rows"], perm=[0, 2, 1], name="/head/Transpose"),
        helper.make_node("Split", ["rows", "head.split"], ["offsets", "logits"], axis=2,
                         name="/head/Split"),
        helper.make_node("Mul", ["offsets", "box_scale"], ["delta"], name="/head/Mul"),
        helper.make_node("Add", ["anchors", "delta"], ["boxes"], name="/head/Add"),
        helper.make_node("Softmax", ["logits"], ["scores"], axis=2, name="/head/Softmax"),
        helper.make_node("Concat", ["boxes", "scores"], ["head"], axis=2, name="/head/Concat"),
        helper.make_node("ReduceMax", ["scores"], ["best"], axes=[2], keepdims=0,
                         name="/post/ReduceMax"),
        helper.make_node("Greater", ["best", "post.threshold"], ["keep"], name="/post/Greater"),
        helper.make_node("NonZero", ["keep"], ["nz"], name="/post/NonZero"),
        helper.make_node("Transpose", ["nz"], ["idx"], perm=[1, 0], name="/post/Transpose"),
        helper.make_node("GatherND", ["head", "idx"], ["detections"], name="/post/GatherND"),
    ]
    graph = helper.make_graph(
        nodes, "ssd_like",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("detections", TensorProto.FLOAT, ["K", 4 + CLASSES])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def project(root: Path, model_toml: str) -> Path:
    (root / "models").mkdir(parents=True)
    onnx.save(ssd_like(), str(root / "models" / "ssd.onnx"))
    keys.generate_device_key(root / "keys" / "dev1.key")
    keys.generate_publisher_key(root / "keys" / "publisher.key")
    (root / "edgepack.toml").write_text(f"""\
[package]
name = "ssd"
version = "1.0.0"
version_counter = 1

[keys]
publisher = "keys/publisher.key"
recipients = ["keys/dev1.pub"]

[[models]]
name = "ssd"
path = "models/ssd.onnx"
labels = ["background", "cat", "dog"]
{model_toml}""")
    return root


POST = """\
  [models.postprocess]
  kind = "detection"
  output = "head"
  box_format = "xyxy"
  has_objectness = false
  score_threshold = 0.4
  iou_threshold = 0.5
  max_detections = 20
"""


def test_uncut_export_is_refused_naming_the_spec_key(tmp_path: Path) -> None:
    root = project(tmp_path, "")
    proc = subprocess.run([sys.executable, "-m", "edgepack.cli", "pack", str(root), "--out",
                           str(tmp_path / "ssd.epk")], capture_output=True, text=True,
                          check=False)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("edgepack: error:")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "'/post/NonZero'" in proc.stderr
    assert "`outputs = ['keep']` in its [[models]] entry of edgepack.toml" in proc.stderr


def test_cut_at_the_head_finished_by_edgepack_nms(tmp_path: Path) -> None:
    root = project(tmp_path, 'outputs = ["head"]\n' + POST)
    spec = load_spec(root)
    assert spec.models[0].outputs == ("head",)
    plan = build_stage_plan(spec)
    model = plan.model("ssd")
    assert [o.name for o in model.outputs] == ["head"]
    assert not {"NonZero", "GatherND"} & {op for op, _ in model.ops}
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, SIZE, SIZE)).astype(np.float32)
    got = run_pipeline(plan, {"images": x})

    original = ssd_like()  # the export as it is, with its head tensor exposed to onnxruntime
    original.graph.output.append(helper.make_tensor_value_info("head", TensorProto.FLOAT,
                                                               [1, GRID * GRID, 4 + CLASSES]))
    session = ort.InferenceSession(original.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    head = session.run(["head"], {"images": x})[0]
    post = spec.models[0].postprocess
    assert isinstance(post, DetectionPost)
    boxes, scores, classes = ref.detection_post(head, post, None, SIZE, SIZE)
    assert len(scores) >= 3, f"only {len(scores)} detections: the test would prove little"
    np.testing.assert_allclose(got["boxes"], boxes, rtol=0, atol=1e-3)
    np.testing.assert_allclose(got["scores"], scores, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(got["classes"], classes)


def test_cut_keeps_only_what_the_outputs_need() -> None:
    cut = cut_model("m.onnx", ssd_like(), ("boxes",))
    assert [n.name for n in cut.graph.node] == ["/head/Conv", "/head/Reshape",
                                                "/head/Transpose", "/head/Split", "/head/Mul",
                                                "/head/Add"]
    assert {i.name for i in cut.graph.initializer} == {"head.weight", "head.shape",
                                                       "head.split", "anchors", "box_scale"}
    assert [o.name for o in cut.graph.output] == ["boxes"]
    onnx.checker.check_model(cut, full_check=True)


@pytest.mark.parametrize(("value", "message"), [
    ('["haed"]', "model has no tensor 'haed' to end at (did you mean 'head'?)"),
    ('["head", "head"]', "a tensor is listed twice"),
    ("[]", "expected a non-empty array of tensor names"),
    ('"head"', "expected a non-empty array of tensor names, found a string"),
])
def test_outputs_key_mistakes(tmp_path: Path, value: str, message: str) -> None:
    root = project(tmp_path, f"outputs = {value}\n")
    with pytest.raises(SpecError) as info:
        load_spec(root)
    assert "models[0].outputs" in str(info.value) and message in str(info.value)

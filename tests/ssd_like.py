# SPDX-License-Identifier: Apache-2.0
"""A small SSD-like export for the cutting tests: a detection head (anchor-decoded boxes and
softmax class scores) followed by data-dependent post-processing (a score threshold through
NonZero), as torchvision's detection exports end; and a project around it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgepack.artifact import keys

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

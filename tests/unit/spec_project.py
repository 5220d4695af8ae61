# SPDX-License-Identifier: Apache-2.0
"""Builders for spec tests: tiny ONNX models, key files and a valid project in a folder.

The spec loader checks that every file exists and reads the models' input and output names,
so each test builds the real files it needs with onnx.helper (a few KB, milliseconds).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgepack.artifact import keys

DETECTOR_CLASSES = 8
CLASSIFIER_CLASSES = 10
COCO8 = ["person", "bicycle", "car", "motorcycle", "bus", "truck", "cat", "dog"]


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def make_detector(path: Path, batch: int | str = 1) -> Path:
    """images [b,3,320,320] -> Conv(stride 32) -> predictions [b,100,4+1+8]."""
    cols = 4 + 1 + DETECTOR_CLASSES
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((cols, 3, 32, 32)).astype(np.float32), "w")
    shape = numpy_helper.from_array(np.array([0, cols, 100], dtype=np.int64), "shape")
    nodes = [
        helper.make_node("Conv", ["images", "w"], ["feat"], name="head_conv", strides=[32, 32]),
        helper.make_node("Reshape", ["feat", "shape"], ["flat"], name="flatten_grid"),
        helper.make_node("Transpose", ["flat"], ["predictions"], name="to_rows", perm=[0, 2, 1]),
    ]
    graph = helper.make_graph(
        nodes, "detector",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, 320, 320])],
        [helper.make_tensor_value_info("predictions", TensorProto.FLOAT, [batch, 100, cols])],
        initializer=[w, shape])
    return _save(graph, path)


def make_classifier(path: Path) -> Path:
    """input [1,3,96,96] -> GlobalAveragePool -> Flatten -> Gemm -> logits [1,10]."""
    rng = np.random.default_rng(1)
    w = numpy_helper.from_array(
        rng.standard_normal((3, CLASSIFIER_CLASSES)).astype(np.float32), "w")
    nodes = [
        helper.make_node("GlobalAveragePool", ["input"], ["pooled"], name="pool"),
        helper.make_node("Flatten", ["pooled"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "w"], ["logits"], name="fc"),
    ]
    graph = helper.make_graph(
        nodes, "classifier",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 96, 96])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, CLASSIFIER_CLASSES])],
        initializer=[w])
    return _save(graph, path)


def populate(root: Path) -> None:
    """Models, keys and label files every spec fixture refers to."""
    make_detector(root / "models" / "detector.onnx")
    make_detector(root / "models" / "dynamic.onnx", batch="N")
    make_classifier(root / "models" / "classifier.onnx")
    keys.generate_publisher_key(root / "keys" / "publisher.key")
    keys.generate_device_key(root / "keys" / "dev1.key")
    keys.generate_device_key(root / "keys" / "dev2.key")
    labels = root / "labels" / "coco8.txt"
    labels.parent.mkdir(parents=True, exist_ok=True)
    if not labels.exists():
        labels.write_text("\n".join(COCO8) + "\n")


VALID_TOML = """\
[package]
name = "vision-demo"
version = "1.2.0"
version_counter = 7

[keys]
publisher = "keys/publisher.key"
recipients = ["keys/dev1.pub", "keys/dev2.pub"]

[[models]]
name = "detector"
path = "models/detector.onnx"
labels = "labels/coco8.txt"
  [[models.inputs]]
  name = "images"
  shape = [1, 3, 320, 320]
    [models.inputs.preprocess]
    source_size = [480, 640]
    pixel_format = "bgr"
    model_format = "rgb"
    resize = "letterbox"
    interpolation = "linear"
    pad_value = 114
    mean = [0, 0, 0]
    std = [255, 255, 255]
    layout = "nchw"
  [models.postprocess]
  kind = "detection"
  output = "predictions"
  box_format = "cxcywh"
  has_objectness = true
  score_threshold = 0.25
  iou_threshold = 0.45
  max_detections = 20

[[models]]
name = "classifier"
path = "models/classifier.onnx"
labels = ["airplane", "automobile", "bird", "cat", "deer",
          "dog", "frog", "horse", "ship", "truck"]
  [[models.inputs]]
  name = "input"
  shape = [1, 3, 96, 96]
    [models.inputs.preprocess]
    source_size = [480, 640]
    pixel_format = "bgr"
    model_format = "rgb"
    resize = "stretch"
    mean = [123.675, 116.28, 103.53]
    std = [58.395, 57.12, 57.375]
  [models.postprocess]
  kind = "classification"
  output = "logits"
  softmax = true
  top_k = 5

[pipeline]
stages = [ { model = "detector" }, { model = "classifier", crops_from = "detector" } ]

[placement.hi3559a]
detector = "npu"
"""


def write_valid_project(root: Path, toml: str = VALID_TOML) -> Path:
    populate(root)
    (root / "edgepack.toml").write_text(toml)
    return root

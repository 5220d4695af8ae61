# SPDX-License-Identifier: Apache-2.0
"""Projects around the real models of ``real_models``: a folder with edgepack.toml, fresh keys
and the refilled model, the way a user would lay it out; shared by unit and SDK tests."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from edgepack.artifact import keys
from real_models import BY_NAME, load_real_model

# The last 1x1 Conv of each class branch of an ultralytics Detect head (cv3.<level>.2).
_CLASS_CONV = re.compile(r"^model\.\d+\.cv3\.\d+\.2\.(weight|bias)$")


def with_class_prior(model: onnx.ModelProto, bias: float, gain: float) -> onnx.ModelProto:
    """Sets the class-logit biases of a YOLOv8/YOLO11 head to ``bias`` and scales the class
    convolutions' weights by ``gain``. ultralytics initialises the biases to
    log(5 / nc / (640 / stride)^2) (about -11) and the refilled weights give logits with a
    spread of ~0.05, so every class score is ~1e-5 and a detection test would keep nothing;
    (bias -8, gain 40) leaves a few dozen boxes of 168,000 class scores above 0.25."""
    found = 0
    for init in model.graph.initializer:
        if match := _CLASS_CONV.match(init.name):
            value = numpy_helper.to_array(init)
            value = (np.full(value.shape, bias, np.float32) if match[1] == "bias"
                     else (value * gain).astype(np.float32))
            init.CopyFrom(numpy_helper.from_array(value, init.name))
            found += 1
    assert found == 6, f"expected 3 class convolutions with biases, found {found} tensors"
    return model


def write_project(root: Path, name: str, model_toml: str = "", *, seed: int = 0,
                  class_prior: tuple[float, float] | None = None) -> Path:
    """``root``/edgepack.toml with one ``[[models]]`` entry for the real model ``name`` (its
    refilled graph in models/), ``model_toml`` appended to that entry; keys/dev1 (device)
    and keys/publisher. Returns ``root``."""
    model = load_real_model(name, seed=seed)
    if class_prior is not None:
        model = with_class_prior(model, *class_prior)
    (root / "models").mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(root / "models" / f"{name}.onnx"))
    keys.generate_device_key(root / "keys" / "dev1.key")
    keys.generate_publisher_key(root / "keys" / "publisher.key")
    assert name in BY_NAME
    (root / "edgepack.toml").write_text(f"""\
[package]
name = "{name.replace('_', '-')}"
version = "1.0.0"
version_counter = 1

[keys]
publisher = "keys/publisher.key"
recipients = ["keys/dev1.pub"]

[[models]]
name = "{name.replace('_', '-')}"
path = "models/{name}.onnx"
{model_toml}""")
    return root


def scene(seed: int) -> np.ndarray[Any, Any]:
    """A smooth synthetic uint8 [240, 400, 3] scene (blobs on gradients): detections come
    from structure, not from per-pixel noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:240, 0:400].astype(np.float32)
    img = np.stack([xx / 400 * 255, yy / 240 * 255, np.full_like(xx, 90)], axis=2)
    for _ in range(12):
        cy, cx, r = rng.uniform(0, 240), rng.uniform(0, 400), rng.uniform(10, 50)
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.uniform(0, 255, 3)
    return img.astype(np.uint8)


YOLO_LETTERBOX = """\
  [[models.inputs]]
  name = "images"
    [models.inputs.preprocess]
    source_size = [240, 400]
    pixel_format = "bgr"
    resize = "letterbox"
    std = [255, 255, 255]
"""


def yolo_post(extra_columns: int = 0, keypoints: bool = False,
              score_threshold: float = 0.25) -> str:
    """The ``[models.postprocess]`` of an ultralytics detect/seg/pose export."""
    return f"""\
  [models.postprocess]
  kind = "detection"
  output = "output0"
  layout = "columns"
  extra_columns = {extra_columns}
  keypoints = {str(keypoints).lower()}
  score_threshold = {score_threshold}
  iou_threshold = 0.7
  max_detections = 50
"""

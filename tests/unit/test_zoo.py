# SPDX-License-Identifier: Apache-2.0
"""The seeded test models: valid ONNX at opset 17, runnable, only runtime ops, deterministic."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest

from edgepack.model import zoo
from edgepack.model.equivalence import random_feeds, run_onnxruntime
from edgepack.model.ingest import RUNTIME_OPS
from edgepack.model.optimize import optimize

REPO = Path(__file__).resolve().parents[2]

BUILDERS: list[tuple[Callable[..., onnx.ModelProto], dict[str, int], str, tuple[int, ...]]] = [
    (zoo.resnet18, {}, "logits", (1, 1000)),
    (zoo.mobilenet_v2, {}, "logits", (1, 1000)),
    (zoo.mobilenet_classifier, {}, "logits", (1, 10)),
    (zoo.yolo_detector, {}, "predictions", (1, 1500, 13)),
    (zoo.yolo_detector, {"input_size": 256, "num_classes": 3}, "predictions", (1, 960, 8)),
]


@pytest.mark.parametrize(("builder", "kwargs", "output", "shape"), BUILDERS,
                         ids=lambda v: getattr(v, "__name__", None))
def test_model_is_valid_and_runs(builder: Callable[..., onnx.ModelProto], kwargs: dict[str, int],
                                 output: str, shape: tuple[int, ...]) -> None:
    model = builder(seed=0, **kwargs)
    onnx.checker.check_model(model, full_check=True)
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 17)]
    assert [o.name for o in model.graph.output] == [output]
    (out,) = run_onnxruntime(model, random_feeds(model, 0))
    assert out.shape == shape
    assert np.all(np.isfinite(out))
    assert 1e-3 < float(np.std(out)) < 1e3  # activations neither vanished nor exploded
    ops = {n.op_type for n in model.graph.node}
    if builder is zoo.yolo_detector:
        # Exporter leftovers the optimiser must remove; everything else is a runtime op.
        assert {"Dropout", "Identity", "Shape"} <= ops
        ops = {n.op_type for n in optimize(model)[0].graph.node}
    assert ops <= RUNTIME_OPS


def test_topologies_are_the_real_ones() -> None:
    resnet = zoo.resnet18()
    convs = [n for n in resnet.graph.node if n.op_type == "Conv"]
    assert len(convs) == 20  # 1 stem + 16 block convs + 3 projection shortcuts
    assert dict((a.name, list(a.ints)) for a in convs[0].attribute)["kernel_shape"] == [7, 7]
    mobilenet = zoo.mobilenet_v2()
    depthwise = [n for n in mobilenet.graph.node if n.op_type == "Conv"
                 and next(a.i for a in n.attribute if a.name == "group") > 1]
    assert len(depthwise) == 17  # one per inverted residual block
    assert sum(n.op_type == "Clip" for n in mobilenet.graph.node) == 35
    small = zoo.mobilenet_classifier()
    assert sum(n.op_type == "BatchNormalization" for n in small.graph.node) == 9


def test_detector_decodes_boxes_in_input_pixels() -> None:
    model = zoo.yolo_detector(seed=1)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (1, 3, 320, 320)).astype(np.float32) / 255.0
    (pred,) = run_onnxruntime(model, {"images": x})
    centres, sizes, probs = pred[0, :, :2], pred[0, :, 2:4], pred[0, :, 4:]
    assert np.all(centres > -32) and np.all(centres < 320 + 32)
    assert np.all(sizes > 0) and np.all(sizes < 4 * 160 + 1)
    assert np.all((probs > 0) & (probs < 1))
    # rows are (anchor, grid y, grid x): row i < 20 is cell (0, i) of the stride-16 head, whose
    # centre is (2 * sigmoid - 0.5 + cell) * 16
    gx = np.arange(20)
    assert np.all((centres[:20, 0] > 16 * gx - 8) & (centres[:20, 0] < 16 * gx + 24))
    assert np.all((centres[:20, 1] > -8) & (centres[:20, 1] < 24))
    assert np.sum(probs[:, :1] * probs[:, 1:] > 0.25) > 0  # something to detect


def test_seeded_and_deterministic() -> None:
    a = zoo.mobilenet_classifier(seed=3).SerializeToString()
    assert a == zoo.mobilenet_classifier(seed=3).SerializeToString()
    assert a != zoo.mobilenet_classifier(seed=4).SerializeToString()


def test_example_models_are_byte_identical(tmp_path: Path) -> None:
    script = REPO / "examples" / "vision-demo" / "generate_models.py"
    digests = []
    for run in ("a", "b"):
        subprocess.run([sys.executable, str(script), "--out", str(tmp_path / run)], check=True,
                       capture_output=True)
        files = sorted((tmp_path / run).iterdir())
        assert [f.name for f in files] == ["classifier.onnx", "detector.onnx"]
        digests.append([hashlib.sha256(f.read_bytes()).hexdigest() for f in files])
    assert digests[0] == digests[1]
    detector = onnx.load(tmp_path / "a" / "detector.onnx")
    assert [d.dim_value for d in detector.graph.input[0].type.tensor_type.shape.dim] == [
        1, 3, 320, 320]

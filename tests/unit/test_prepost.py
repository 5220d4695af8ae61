# SPDX-License-Identifier: Apache-2.0
"""Pre/post/crop graphs: numpy formulas vs onnx.reference vs onnxruntime."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnx
import prepost_reference as ref
import pytest
from onnx.reference import ReferenceEvaluator

from edgepack.errors import ModelError, SpecError
from edgepack.model.equivalence import run_onnxruntime
from edgepack.model.ingest import RUNTIME_OPS
from edgepack.model.prepost import (
    build_classification_post,
    build_crop,
    build_detection_post,
    build_preprocess,
    geometry,
)
from edgepack.model.tensors import TensorDesc
from edgepack.spec.loader import load_spec
from edgepack.spec.project import ClassificationPost, DetectionPost, PreprocessSpec
from ssd_like import POST, project

Array = np.ndarray[Any, Any]


def both(model: onnx.ModelProto, feeds: dict[str, Array]) -> tuple[list[Array], list[Array]]:
    """(onnxruntime outputs, onnx.reference outputs), after checking the graph's ops and opset."""
    assert {n.op_type for n in model.graph.node} <= RUNTIME_OPS
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 17)]
    evaluated = ReferenceEvaluator(model).run(None, feeds)
    return run_onnxruntime(model, feeds), [np.asarray(r) for r in evaluated]


PRE_CASES = [
    # source (h, w), model (h, w), pixel_format, model_format, resize, interpolation, layout
    ((30, 40), (16, 16), "rgb", "rgb", "stretch", "linear", "nchw"),
    ((30, 40), (16, 16), "bgr", "rgb", "letterbox", "linear", "nchw"),
    ((24, 18), (20, 20), "bgr", "rgb", "letterbox", "nearest", "nhwc"),
    ((12, 20), (24, 32), "gray", "rgb", "stretch", "nearest", "nhwc"),
    ((30, 40), (16, 16), "rgb", "gray", "letterbox", "linear", "nchw"),
    ((31, 17), (16, 16), "rgb", "bgr", "stretch", "linear", "nhwc"),
    ((16, 16), (16, 16), "rgb", "rgb", "stretch", "linear", "nchw"),  # no resize at all
]


@pytest.mark.parametrize("case", PRE_CASES, ids=lambda c: "-".join(map(str, c[2:])))
def test_preprocess_matches_numpy(case: tuple[Any, ...]) -> None:
    (sh, sw), (h, w), pix, fmt, resize, interp, layout = case
    c = 1 if fmt == "gray" else 3
    pre = PreprocessSpec(source_size=(sh, sw), pixel_format=pix, model_format=fmt,
                         resize=resize, interpolation=interp, pad_value=114.0,
                         mean=(10.0, 20.0, 30.0)[:c], std=(50.0, 60.0, 70.0)[:c], layout=layout)
    shape = (1, c, h, w) if layout == "nchw" else (1, h, w, c)
    model = build_preprocess(pre, TensorDesc("input", "float32", shape))
    rng = np.random.default_rng(sum(map(ord, str(case))))
    img = rng.integers(0, 256, (sh, sw, 1 if pix == "gray" else 3), dtype=np.uint8)
    expected = ref.preprocess(img, pre, h, w)
    (ort_out,), (ref_out,) = both(model, {"image": img})
    assert ort_out.shape == shape == expected.shape
    np.testing.assert_allclose(ort_out, expected, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(ref_out, expected, rtol=1e-5, atol=1e-4)


def test_letterbox_geometry_matches_yolov5() -> None:
    pre = PreprocessSpec(source_size=(480, 640), resize="letterbox")
    geo = geometry(pre, 320, 320)
    assert (geo.new_h, geo.new_w, geo.top, geo.bottom, geo.left, geo.right) == (
        240, 320, 40, 40, 0, 0)
    odd = geometry(PreprocessSpec(source_size=(100, 300), resize="letterbox"), 64, 64)
    assert (odd.new_h, odd.new_w) == (21, 64)
    assert odd.top + odd.bottom == 43 and abs(odd.top - odd.bottom) == 1


def test_letterbox_pads_with_pad_value() -> None:
    pre = PreprocessSpec(source_size=(480, 640), resize="letterbox", pad_value=114.0)
    model = build_preprocess(pre, TensorDesc("images", "float32", (1, 3, 320, 320)))
    img = np.zeros((480, 640, 3), np.uint8)
    (out,) = run_onnxruntime(model, {"image": img})
    assert np.all(out[:, :, :40] == 114.0) and np.all(out[:, :, 280:] == 114.0)
    assert np.all(out[:, :, 40:280] == 0.0)


def test_preprocess_refuses_channel_mismatch() -> None:
    pre = PreprocessSpec(source_size=(10, 10), model_format="gray")
    with pytest.raises(ModelError, match="model_format 'gray'"):
        build_preprocess(pre, TensorDesc("input", "float32", (1, 3, 8, 8)))


@pytest.mark.parametrize("softmax", [True, False])
def test_classification_post(softmax: bool) -> None:
    logits = np.random.default_rng(3).normal(0, 3, (1, 10)).astype(np.float32)
    model = build_classification_post(ClassificationPost("logits", softmax=softmax, top_k=3),
                                      TensorDesc("logits", "float32", (1, 10)))
    probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    values = probs if softmax else logits
    order = np.argsort(-values[0])[:3]
    for scores, indices in both(model, {"logits": logits}):
        assert indices.dtype == np.int64 and indices.shape == (1, 3)
        np.testing.assert_array_equal(indices[0], order)
        np.testing.assert_allclose(scores[0], values[0, order], rtol=1e-5)


def test_classification_post_caps_k_at_classes() -> None:
    model = build_classification_post(ClassificationPost("logits", top_k=5),
                                      TensorDesc("logits", "float32", (1, 3)))
    scores, indices = run_onnxruntime(model, {"logits": np.zeros((1, 3), np.float32)})
    assert scores.shape == indices.shape == (1, 3)


def _predictions(rows: list[tuple[float, ...]], n: int, classes: int) -> Array:
    """[1, n, 5 + classes] with the given rows first and zero-score padding after."""
    p = np.zeros((1, n, 5 + classes), np.float32)
    p[0, :, :4] = (50.0, 50.0, 10.0, 10.0)
    for i, row in enumerate(rows):
        p[0, i, :len(row)] = row
    return p


def test_detection_post_nms_and_source_mapping() -> None:
    pre = PreprocessSpec(source_size=(480, 640), resize="letterbox")
    model_in = TensorDesc("images", "float32", (1, 3, 320, 320))
    post = DetectionPost("predictions", score_threshold=0.25, iou_threshold=0.45,
                         max_detections=10)
    rows: list[tuple[float, ...]] = [
        # cx, cy, w, h (model pixels), obj, class 0, class 1
        (100.0, 100.0, 40.0, 40.0, 1.0, 0.9, 0.0),  # kept
        (102.0, 101.0, 40.0, 40.0, 1.0, 0.8, 0.0),  # same class, IoU ~0.87: suppressed
        (101.0, 100.0, 40.0, 40.0, 1.0, 0.0, 0.7),  # overlaps but other class: kept
        (200.0, 150.0, 60.0, 30.0, 0.5, 0.6, 0.0),  # score 0.3: kept
        (250.0, 250.0, 20.0, 20.0, 0.4, 0.5, 0.0),  # score 0.2 < threshold: dropped
        (5.0, 45.0, 30.0, 20.0, 1.0, 0.0, 0.65),  # crosses the left edge + top pad: clipped
    ]
    pred = _predictions(rows, 64, 2)
    model = build_detection_post(post, TensorDesc("predictions", "float32", (1, 64, 7)),
                                 pre, model_in)
    expected = ref.detection_post(pred, post, pre, 320, 320)
    assert len(expected[0]) == 4
    # By hand: letterbox 640x480 -> 320x240 + 40 rows of padding on top; scale 0.5.
    np.testing.assert_allclose(expected[0][0], [160.0, 80.0, 240.0, 160.0], atol=1e-4)
    np.testing.assert_allclose(expected[0][2], [0.0, 0.0, 40.0, 30.0], atol=1e-4)  # 3rd best
    for boxes, scores, classes in both(model, {"predictions": pred}):
        np.testing.assert_allclose(boxes, expected[0], atol=1e-3)
        np.testing.assert_allclose(scores, expected[1], rtol=1e-6)
        np.testing.assert_array_equal(classes, expected[2])
        assert classes.dtype == np.int64


def test_detection_post_keeps_best_max_detections() -> None:
    post = DetectionPost("predictions", max_detections=3, has_objectness=False,
                         box_format="xyxy")
    n = 32
    p = np.zeros((1, n, 4 + 2), np.float32)
    for i in range(n):  # disjoint boxes, distinct scores
        p[0, i, :4] = (i * 10.0, 0.0, i * 10.0 + 8.0, 8.0)
        p[0, i, 4 + i % 2] = 0.3 + 0.02 * i
    model = build_detection_post(post, TensorDesc("predictions", "float32", (1, n, 6)))
    expected = ref.detection_post(p, post, None, 0, 0)
    for boxes, scores, classes in both(model, {"predictions": p}):
        assert boxes.shape == (3, 4)
        np.testing.assert_allclose(scores, [0.3 + 0.02 * i for i in (31, 30, 29)], rtol=1e-6)
        np.testing.assert_array_equal(classes, [1, 0, 1])
        np.testing.assert_allclose(boxes, expected[0])


def test_detection_post_with_nothing_above_threshold() -> None:
    post = DetectionPost("predictions")
    pred = _predictions([], 16, 3)
    model = build_detection_post(post, TensorDesc("predictions", "float32", (1, 16, 8)))
    for boxes, scores, classes in both(model, {"predictions": pred}):
        assert boxes.shape == (0, 4) and scores.shape == (0,) and classes.shape == (0,)


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_crop_matches_numpy_roi_align(layout: Literal["nchw", "nhwc"]) -> None:
    pre = PreprocessSpec(source_size=(20, 30), pixel_format="bgr", model_format="rgb",
                         mean=(100.0, 110.0, 120.0), std=(50.0, 55.0, 60.0), layout=layout)
    h, w = 6, 5
    shape = (1, 3, h, w) if layout == "nchw" else (1, h, w, 3)
    model = build_crop(pre, TensorDesc("input", "float32", shape))
    rng = np.random.default_rng(11)
    img = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    boxes = np.array([[2.0, 3.0, 17.5, 12.0],  # inside
                      [20.0, 10.0, 30.0, 20.0],  # touching the far corner
                      [-3.0, -2.0, 8.0, 6.0],  # partly outside
                      [5.0, 5.0, 5.5, 5.5]], np.float32)  # tiny
    chw = ((ref.reorder(img, "bgr", "rgb") - np.array(pre.mean, np.float32))
           / np.array(pre.std, np.float32)).transpose(2, 0, 1)
    expected = ref.roi_align(chw, boxes, h, w)
    if layout == "nhwc":
        expected = expected.transpose(0, 2, 3, 1)
    (ort_out,), (ref_out,) = both(model, {"image": img, "boxes": boxes})
    assert ort_out.shape == (4, *shape[1:])
    np.testing.assert_allclose(ort_out, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ref_out, expected, rtol=1e-4, atol=1e-4)


def test_crop_with_no_boxes() -> None:
    pre = PreprocessSpec(source_size=(20, 30))
    model = build_crop(pre, TensorDesc("input", "float32", (1, 3, 8, 8)))
    img = np.zeros((20, 30, 3), np.uint8)
    (out,) = run_onnxruntime(model, {"image": img, "boxes": np.zeros((0, 4), np.float32)})
    assert out.shape == (0, 3, 8, 8)


def _two_tensor(n: int, classes: int, seed: int) -> tuple[Array, Array]:
    """Per-image boxes [n, 4] (x1, y1, x2, y2, apart from each other) and softmax-like scores
    [n, classes] whose best class is often the background, class 0."""
    rng = np.random.default_rng(seed)
    corner = rng.uniform(0, 280, (n, 2)).astype(np.float32)
    boxes = np.concatenate([corner, corner + rng.uniform(10, 40, (n, 2))], axis=1)
    scores = rng.uniform(0, 0.3, (n, classes)).astype(np.float32)
    scores[:, 0] += 0.5
    return boxes.astype(np.float32), scores


def test_per_image_two_tensor_head_with_a_background_class() -> None:
    """torchvision's per-image head: boxes [N, 4] and scores [N, C] without a batch dimension,
    class 0 the background. Same detections as the batched [1, N, 4] + [1, N, C] head with the
    background column zeroed; without background_class the background wins most boxes."""
    n, classes = 40, 6
    boxes, scores = _two_tensor(n, classes, 3)
    post = DetectionPost(output="boxes", box_format="xyxy", has_objectness=False,
                         scores_output="scores", background_class=0, score_threshold=0.2,
                         iou_threshold=0.5, max_detections=10)
    per_image = build_detection_post(post, TensorDesc("head.boxes", "float32", (n, 4)), None, None,
                                     TensorDesc("head.scores", "float32", (n, classes)))
    got, evaluated = both(per_image, {"head.boxes": boxes, "head.scores": scores})
    batched = build_detection_post(
        DetectionPost(output="boxes", box_format="xyxy", has_objectness=False,
                      scores_output="scores", score_threshold=0.2, iou_threshold=0.5,
                      max_detections=10),
        TensorDesc("head.boxes", "float32", (1, n, 4)), None, None,
        TensorDesc("head.scores", "float32", (1, n, classes)))
    no_background = scores.copy()
    no_background[:, 0] = 0.0
    want, _ = both(batched, {"head.boxes": boxes[None], "head.scores": no_background[None]})
    assert len(want[1]) >= 5 and 0 not in got[2]
    for g, e, w in zip(got, evaluated, want, strict=True):
        np.testing.assert_array_equal(g, w)
        np.testing.assert_array_equal(e, w)
    with_background, _ = both(batched, {"head.boxes": boxes[None], "head.scores": scores[None]})
    assert (with_background[2] == 0).sum() > len(with_background[2]) // 2


@pytest.mark.parametrize(("boxes", "scores", "message"), [
    ((5, 4), (1, 5, 3), "must be [5, classes] beside boxes [5, 4]"),
    ((5, 3), (5, 3), "must be [1, N, 4] or [N, 4]"),
    ((2, 5, 4), (2, 5, 3), "must be [1, N, 4] or [N, 4]"),
])
def test_two_tensor_head_shape_mistakes(boxes: tuple[int, ...], scores: tuple[int, ...],
                                        message: str) -> None:
    post = DetectionPost(output="boxes", box_format="xyxy", has_objectness=False,
                         scores_output="scores")
    with pytest.raises(ModelError, match=message.replace("[", r"\[")):
        build_detection_post(post, TensorDesc("boxes", "float32", boxes), None, None,
                             TensorDesc("scores", "float32", scores))


def test_background_class_beyond_the_classes_is_an_error() -> None:
    post = DetectionPost(output="boxes", box_format="xyxy", has_objectness=False,
                         scores_output="scores", background_class=3)
    with pytest.raises(ModelError, match="background_class 3 does not exist"):
        build_detection_post(post, TensorDesc("boxes", "float32", (5, 4)), None, None,
                             TensorDesc("scores", "float32", (5, 3)))


@pytest.mark.parametrize(("extra", "message"), [
    ("background_class = 3", "postprocess.background_class: class 3 does not exist: the head "
                             "has 3 classes"),
    ("background_class = -1", "postprocess.background_class"),
])
def test_background_class_mistakes_in_the_spec(tmp_path: Path, extra: str, message: str) -> None:
    root = project(tmp_path, 'outputs = ["boxes", "scores"]\n' + POST.replace(
        'output = "head"', f'output = "boxes"\n  scores_output = "scores"\n  {extra}'))
    with pytest.raises(SpecError) as info:
        load_spec(root)
    assert message in str(info.value)


def test_background_class_in_the_spec(tmp_path: Path) -> None:
    root = project(tmp_path, 'outputs = ["head"]\n' + POST.replace(
        'has_objectness = false', 'has_objectness = false\n  background_class = 0'))
    post = load_spec(root).models[0].postprocess
    assert isinstance(post, DetectionPost) and post.background_class == 0

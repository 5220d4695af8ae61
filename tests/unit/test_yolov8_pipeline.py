# SPDX-License-Identifier: Apache-2.0
"""Real YOLOv8n / YOLO11n exports (detect, seg, pose) through letterbox pre -> model -> YOLOv8
post (``layout = "columns"``, no objectness) -> NMS, on the host reference pipeline, against a
numpy reference of the same processing (prepost_reference, written from the formulas) fed by
onnxruntime on the original export.

Tolerances: boxes and keypoints (source pixels) atol 1e-2, scores atol 1e-4, classes equal; mask
coefficients and prototypes atol 1e-4 x max(1, max |reference|)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import prepost_reference as ref
import pytest

from edgepack.model.reference import run_pipeline
from edgepack.model.stages import build_stage_plan
from edgepack.spec.loader import load_spec
from edgepack.spec.project import DetectionPost
from real_projects import YOLO_LETTERBOX, scene, write_project, yolo_post

# model -> (extra_columns, keypoints, class prior): the prior (class-logit bias, gain; see
# real_projects.with_class_prior) leaves a few dozen candidate boxes: 80 classes or 1 (v8 pose).
CASES = {
    "yolov8n": (0, False, (-8.0, 40.0)),
    "yolov8n_seg": (32, False, (-8.0, 40.0)),
    "yolov8n_pose": (51, True, (-6.0, 200.0)),
    "yolo11n_pose": (51, True, (-6.0, 150.0)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_yolo_pipeline_matches_numpy_reference(name: str, tmp_path: Path) -> None:
    extra, keypoints, prior = CASES[name]
    root = write_project(tmp_path, name, YOLO_LETTERBOX + yolo_post(extra, keypoints),
                         class_prior=prior)
    spec = load_spec(root)
    post = spec.models[0].postprocess
    pre = spec.models[0].inputs[0].preprocess
    assert isinstance(post, DetectionPost) and pre is not None
    assert post.layout == "columns" and not post.has_objectness
    plan = build_stage_plan(spec)
    image = scene(1)
    got = run_pipeline(plan, {"image": image})

    model = onnx.load(str(root / "models" / f"{name}.onnx"))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = ref.preprocess(image, pre, 320, 320)
    raw = dict(zip([o.name for o in session.get_outputs()], session.run(None, {"images": x}),
                   strict=True))
    want = ref.detection_post(raw["output0"], post, pre, 320, 320)
    assert len(want[1]) >= 5, f"only {len(want[1])} detections: the test would prove little"
    names = ["boxes", "scores", "classes", "extras"][:len(want)]
    assert set(got) == set(names) | (set(raw) - {"output0"})
    for out, expected in zip(names, want, strict=True):
        actual = got[out]
        assert actual.dtype == expected.dtype and actual.shape == expected.shape, out
        if out == "classes":
            np.testing.assert_array_equal(actual, expected)
        elif out == "boxes" or (out == "extras" and keypoints):
            np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-2, err_msg=out)
        else:
            atol = 1e-4 * max(1.0, float(np.abs(expected).max()))
            np.testing.assert_allclose(actual, expected, rtol=0, atol=atol, err_msg=out)
    if "output1" in raw:  # seg: the mask prototypes pass through as a pipeline output
        scale = max(1.0, float(np.abs(raw["output1"]).max()))
        np.testing.assert_allclose(got["output1"], raw["output1"], rtol=0, atol=1e-4 * scale)

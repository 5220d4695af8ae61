# SPDX-License-Identifier: Apache-2.0
"""The real-model suite: every graph of tests/data/real_models (torchvision, ultralytics, timm
exports with seeded weights) packs in-process, runs through the host SDK's edgepack-run and
matches onnxruntime on the refilled export; YOLOv8n / YOLOv8n-seg / YOLO11n-pose also run as
whole pipelines (letterbox pre -> model -> YOLOv8 post -> NMS) against the host reference.

Tolerance (max |edgepack - onnxruntime| / max(1, max |onnxruntime|), per output, on the
artifact's golden input: seeded standard normal on the int8 x 1/32 grid), stated per family:
- torchvision and timm classifiers: 1e-4 (measured worst 3e-6: efficientnet_b0);
- ultralytics YOLO raw heads: 1e-4 (measured worst 5e-6: yolo11n_seg's mask prototypes; box
  rows are pixel coordinates up to ~950, hence the scale);
- YOLO pipelines: boxes and keypoints (source pixels) atol 1e-2, scores atol 1e-4, classes
  equal, mask coefficients atol 1e-4 x max(1, max |reference|).
- torchvision SSDlite, cut at its per-image head (boxes [3234, 4], softmax scores [3234, 91]
  with class 0 the background) and finished by edgepack's NMS: the same detections as
  torchvision's own exported post-processing under onnxruntime (boxes atol 1e-2, scores 1e-4,
  classes equal).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from sdk_host import SdkBuild, run

from edgepack.artifact import container as artifact
from edgepack.artifact import golden as reference_data
from edgepack.artifact import keys, manifest
from edgepack.artifact.pack import pack_project
from edgepack.model.reference import run_pipeline
from edgepack.model.stages import build_stage_plan
from edgepack.spec.loader import load_spec
from real_models import BY_NAME, REAL_MODELS, RealModel, load_real_model, save_real_model
from real_projects import YOLO_LETTERBOX, scene, write_project, yolo_post

Array = np.ndarray[Any, Any]

FAMILY_TOLERANCE = {"torchvision": 1e-4, "timm": 1e-4, "ultralytics": 1e-4}
PIPELINES = {  # model -> (extra_columns, keypoints, class prior); see test_yolov8_pipeline
    "yolov8n": (0, False, (-8.0, 40.0)),
    "yolov8n_seg": (32, False, (-8.0, 40.0)),
    "yolo11n_pose": (51, True, (-6.0, 150.0)),
}


def family(spec: RealModel) -> str:
    return spec.source.split()[0]


def runner_outputs(sdk: SdkBuild, project: Path, epk: Path, inputs: dict[str, Array],
                   work: Path) -> dict[str, Array]:
    """edgepack-run on ``epk`` with the project's keys; inputs and outputs under ``work``."""
    (work / "in").mkdir()
    for name, value in inputs.items():
        np.save(work / "in" / f"{name}.npy", value)
    run([sdk.runner, epk, "--key", project / "keys" / "dev1.key", "--publisher",
         project / "keys" / "publisher.pub", "--inputs", work / "in", "--outputs", work / "out"])
    return {p.stem: np.load(p) for p in (work / "out").glob("*.npy")}


@pytest.mark.parametrize("spec", REAL_MODELS, ids=[m.name for m in REAL_MODELS])
def test_real_model_packs_and_matches_onnxruntime(sdk_host: SdkBuild, tmp_path: Path,
                                                  spec: RealModel) -> None:
    if spec.external_data:  # the dynamo export: model.onnx + model.onnx.data, as torch writes
        root = tmp_path
        save_real_model(spec.name, root / "models")
        keys.generate_device_key(root / "keys" / "dev1.key")
        keys.generate_publisher_key(root / "keys" / "publisher.key")
        (root / "edgepack.toml").write_text("""\
[package]
name = "dynamo"
version = "1.0.0"
version_counter = 1

[keys]
publisher = "keys/publisher.key"
recipients = ["keys/dev1.pub"]

[[models]]
name = "model"
path = "models/model.onnx"
""")
    else:
        root = write_project(tmp_path, spec.name)
    epk = tmp_path / "model.epk"
    packed = pack_project(root, epk)
    # One copy of the model and a small golden reference (artifact/golden.py): the whole
    # artifact is at most 1.05x the ONNX.
    onnx_bytes = sum(p.stat().st_size for p in (root / "models").iterdir())
    assert epk.stat().st_size <= 1.05 * onnx_bytes, epk.stat().st_size / onnx_bytes

    # Fed the golden inputs (standard normal on the int8 x 1/32 grid) the artifact carries.
    opened = artifact.open_artifact(epk.read_bytes(),
                                    keys.load_device_private(root / "keys" / "dev1.key"),
                                    keys.load_publisher_public(root / "keys" / "publisher.pub"))
    golden = manifest.loads(opened.manifest_bytes)["golden"]
    sections = dict(opened.sections)
    feeds = {n: reference_data.read_input(e, sections) for n, e in golden["inputs"].items()}
    assert set(feeds) == set(spec.inputs) and packed.header.file_len == epk.stat().st_size
    got = runner_outputs(sdk_host, root, epk, feeds, tmp_path)
    model = load_real_model(spec.name)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = dict(zip(spec.outputs, session.run(None, feeds), strict=True))
    assert set(got) == set(want)
    tol = FAMILY_TOLERANCE[family(spec)]
    for name, ref in want.items():
        assert got[name].shape == ref.shape and got[name].dtype == ref.dtype, name
        scale = max(1.0, float(np.abs(ref).max()))
        np.testing.assert_allclose(got[name], ref, rtol=0, atol=tol * scale,
                                   err_msg=f"{spec.name}: {name}")
        # The artifact's golden output (whole, or its summary) accepts the same run.
        check = reference_data.read_output(golden["outputs"][name], sections).compare(
            name, got[name], tol * scale, 0.9999)
        assert check["passed"], check


@pytest.mark.parametrize("name", list(PIPELINES))
def test_yolo_pipeline_through_the_runner(sdk_host: SdkBuild, tmp_path: Path, name: str) -> None:
    extra, keypoints, prior = PIPELINES[name]
    root = write_project(tmp_path / "project", name,
                         YOLO_LETTERBOX + yolo_post(extra, keypoints), class_prior=prior)
    epk = tmp_path / "model.epk"
    pack_project(root, epk)
    image = scene(1)
    got = runner_outputs(sdk_host, root, epk, {"image": image}, tmp_path)
    want = run_pipeline(build_stage_plan(load_spec(root)), {"image": image})
    assert set(want) == set(got)
    assert len(want["scores"]) >= 5, f"only {len(want['scores'])} detections"
    for out, ref in want.items():
        assert got[out].shape == ref.shape and got[out].dtype == ref.dtype, out
        if out == "classes":
            np.testing.assert_array_equal(got[out], ref)
        elif out == "boxes" or (out == "extras" and keypoints):
            np.testing.assert_allclose(got[out], ref, rtol=0, atol=1e-2, err_msg=out)
        else:
            atol = 1e-4 * max(1.0, float(np.abs(ref).max(initial=0.0)))
            np.testing.assert_allclose(got[out], ref, rtol=0, atol=atol, err_msg=out)


SSDLITE = "ssdlite320_mobilenet_v3_large"


def ssdlite_toml(spec: RealModel, score_threshold: float, max_detections: int) -> str:
    """Cut at the head and finished by edgepack's NMS with torchvision's IoU threshold."""
    boxes, scores = spec.cut
    return f"""outputs = ["{boxes}", "{scores}"]
  [models.postprocess]
  kind = "detection"
  output = "{boxes}"
  scores_output = "{scores}"
  box_format = "xyxy"
  background_class = 0
  score_threshold = {score_threshold}
  iou_threshold = 0.55
  max_detections = {max_detections}
"""


def test_ssdlite_cut_at_its_head_matches_torchvision_postprocessing(
        sdk_host: SdkBuild, tmp_path: Path) -> None:
    """torchvision's post-processing (per class: scores above 0.001, the best 300, NMS at IoU
    0.55; then the best 300 overall) keeps, above 0.2, exactly what edgepack's per-class NMS at
    the same IoU keeps above 0.2: compared in score order, through the runner and on the host."""
    spec = BY_NAME[SSDLITE]
    threshold, count = 0.2, 20
    root = write_project(tmp_path / "project", SSDLITE, ssdlite_toml(spec, threshold, count))
    epk = tmp_path / "ssdlite.epk"
    pack_project(root, epk)
    image = np.random.default_rng(5).standard_normal((1, 3, 320, 320)).astype(np.float32)
    got = runner_outputs(sdk_host, root, epk, {"images": image}, tmp_path)
    host = run_pipeline(build_stage_plan(load_spec(root)), {"images": image})

    session = ort.InferenceSession(load_real_model(SSDLITE).SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    boxes, scores, labels = session.run(None, {"images": image})
    above = scores > threshold
    assert above.sum() >= 5, f"only {above.sum()} torchvision detections above {threshold}"
    k = min(int(above.sum()), count)
    order = np.argsort(-scores, kind="stable")[:k]
    for result in (got, host):
        assert len(result["scores"]) == k
        np.testing.assert_allclose(result["scores"], scores[order], rtol=0, atol=1e-4)
        np.testing.assert_allclose(result["boxes"], boxes[order], rtol=0, atol=1e-2)
        np.testing.assert_array_equal(result["classes"], labels[order])
    assert 0 not in got["classes"]

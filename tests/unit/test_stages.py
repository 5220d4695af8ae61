# SPDX-License-Identifier: Apache-2.0
"""The stage plan of the example project and the host reference pipeline on it."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from edgepack.model.reference import golden_inputs, run_pipeline, run_stage
from edgepack.model.stages import StagePlan, build_stage_plan
from edgepack.spec.loader import load_spec
from edgepack.spec.project import DetectionPost, Spec
from example_project import example_project


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> Spec:
    """The example project with its models generated and fresh keys."""
    return load_spec(example_project(tmp_path_factory.mktemp("vision-demo")))


@pytest.fixture(scope="module")
def plan(spec: Spec) -> StagePlan:
    return build_stage_plan(spec, {"detector": "npu"})


def test_stage_names_kinds_and_processors(plan: StagePlan) -> None:
    assert [(s.name, s.kind, s.model, s.processor) for s in plan.stages] == [
        ("detector.pre", "pre", "detector", "cpu"),
        ("detector", "model", "detector", "npu"),
        ("detector.post", "post", "detector", "cpu"),
        ("classifier.crop", "crop", "classifier", "cpu"),
        ("classifier", "model", "classifier", "cpu"),
        ("classifier.post", "post", "classifier", "cpu"),
    ]
    for stage in plan.stages:  # descriptions name the graphs' own inputs and outputs
        assert [t.name for t in stage.inputs] == [
            i.name for i in stage.onnx.graph.input
            if i.name not in {x.name for x in stage.onnx.graph.initializer}]
        assert [t.name for t in stage.outputs] == [o.name for o in stage.onnx.graph.output]
    crop = plan.stage("classifier.crop").to_manifest()
    assert crop["inputs"][1] == {"name": "boxes", "dtype": "float32", "shape": [20, 4],
                                 "layout": None, "dynamic_dim0": True}
    assert crop["outputs"][0]["shape"] == [20, 3, 96, 96] and crop["outputs"][0]["dynamic_dim0"]
    assert plan.stage("detector.post").output("classes").dtype == "int64"


def test_pipeline_bindings_and_map_steps(plan: StagePlan) -> None:
    pipeline = plan.pipeline()
    assert pipeline["inputs"] == [
        {"name": "image", "dtype": "uint8", "shape": [480, 640, 3], "layout": "HWC"}]
    assert pipeline["steps"] == [
        {"stage": "detector.pre", "bind": {"image": "image"}},
        {"stage": "detector", "bind": {"images": "detector.pre:output"}},
        {"stage": "detector.post", "bind": {"predictions": "detector:predictions"}},
        {"stage": "classifier.crop", "bind": {"image": "image", "boxes": "detector.post:boxes"}},
        {"stage": "classifier", "bind": {"input": "classifier.crop:output"}, "map": True},
        {"stage": "classifier.post", "bind": {"logits": "classifier:logits"}, "map": True},
    ]
    assert pipeline["outputs"] == {
        "detector.boxes": "detector.post:boxes",
        "detector.scores": "detector.post:scores",
        "detector.classes": "detector.post:classes",
        "classifier.scores": "classifier.post:scores",
        "classifier.indices": "classifier.post:indices",
    }


def test_manifest_models(plan: StagePlan) -> None:
    models = {m["name"]: m for m in plan.manifest_models()}
    det = models["detector"]
    assert det["source"] == "models/detector.onnx" and det["opset"] == 17
    assert det["stages"] == ["detector.pre", "detector", "detector.post"]
    assert det["preprocess"]["resize"] == "letterbox"
    assert det["postprocess"]["max_detections"] == 20
    assert models["classifier"]["stages"] == ["classifier.crop", "classifier", "classifier.post"]
    assert models["classifier"]["labels"][0] == "airplane"
    assert models["classifier"]["inputs"][0]["layout"] == "NCHW"


def test_reference_pipeline_one_classification_per_box(plan: StagePlan) -> None:
    inputs = golden_inputs(plan, 0)
    assert inputs["image"].dtype == np.uint8 and inputs["image"].shape == (480, 640, 3)
    out = run_pipeline(plan, inputs)
    boxes = out["detector.boxes"]
    count = len(boxes)
    assert 0 < count <= 20
    assert out["detector.scores"].shape == (count,) and out["detector.classes"].shape == (count,)
    assert out["classifier.indices"].shape == (count, 5)
    assert out["classifier.scores"].shape == (count, 5)
    assert np.all(boxes[:, 2] >= boxes[:, 0]) and np.all(boxes[:, 3] >= boxes[:, 1])
    assert np.all(boxes >= 0)
    assert np.all(boxes[:, [0, 2]] <= 640) and np.all(boxes[:, [1, 3]] <= 480)
    assert np.all(np.diff(out["detector.scores"]) <= 0)
    # Row i of the mapped classifier equals running the stages by hand on box i.
    crops = run_stage(plan.stage("classifier.crop"), {"image": inputs["image"], "boxes": boxes})
    for i in (0, count - 1):
        logits = run_stage(plan.stage("classifier"), {"input": crops["output"][i:i + 1]})
        post = run_stage(plan.stage("classifier.post"), logits)
        np.testing.assert_array_equal(post["indices"][0], out["classifier.indices"][i])
        np.testing.assert_allclose(post["scores"][0], out["classifier.scores"][i], rtol=1e-6)


def test_reference_pipeline_from_manifest_and_graph_bytes(plan: StagePlan) -> None:
    manifest_like: dict[str, Any] = {"pipeline": plan.pipeline(),
                                     "stages": plan.manifest_stages()}
    graphs = {s.name: s.onnx.SerializeToString() for s in plan.stages}
    inputs = golden_inputs(manifest_like, 3)
    a = run_pipeline(manifest_like, graphs, inputs)
    b = run_pipeline(plan, inputs)
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])


def test_map_over_zero_boxes_gives_empty_stacks(spec: Spec) -> None:
    detector = spec.model("detector")
    assert isinstance(detector.postprocess, DetectionPost)
    strict = dataclasses.replace(detector, postprocess=dataclasses.replace(
        detector.postprocess, score_threshold=0.999))
    plan = build_stage_plan(dataclasses.replace(
        spec, models=(strict, *[m for m in spec.models if m.name != "detector"])))
    out = run_pipeline(plan, golden_inputs(plan, 0))
    assert out["detector.boxes"].shape == (0, 4)
    assert out["classifier.indices"].shape == (0, 5)
    assert out["classifier.indices"].dtype == np.int64
    assert out["classifier.scores"].dtype == np.float32


def test_without_pipeline_each_model_runs_pre_model_post(spec: Spec) -> None:
    plan = build_stage_plan(dataclasses.replace(spec, pipeline=None))
    assert [s.name for s in plan.stages] == [
        "detector.pre", "detector", "detector.post",
        "classifier.pre", "classifier", "classifier.post"]
    pipeline = plan.pipeline()
    assert [t["name"] for t in pipeline["inputs"]] == ["detector.images", "classifier.input"]
    assert not any(step.get("map") for step in pipeline["steps"])
    assert pipeline["steps"][3] == {"stage": "classifier.pre",
                                    "bind": {"image": "classifier.input"}}
    assert pipeline["steps"][4] == {"stage": "classifier",
                                    "bind": {"input": "classifier.pre:output"}}
    out = run_pipeline(plan, golden_inputs(plan, 1))
    assert out["classifier.indices"].shape == (1, 5)
    assert len(out["detector.boxes"]) <= 20

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
from onnx import TensorProto, helper

from edgepack.errors import SpecError
from edgepack.model.cut import cut_model
from edgepack.model.reference import run_pipeline
from edgepack.model.stages import build_stage_plan
from edgepack.spec.loader import load_spec
from edgepack.spec.project import DetectionPost
from ssd_like import CLASSES, GRID, POST, SIZE, project, ssd_like


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


def test_two_tensor_head_cut_at_boxes_and_scores(tmp_path: Path) -> None:
    """SSD/RetinaNet-style: cut at the decoded boxes [1, N, 4] and the class scores [1, N, C]
    (two outputs, ``scores_output``); the result equals the one-tensor cut at ``head``."""
    two = project(tmp_path / "two", 'outputs = ["boxes", "scores"]\n' + POST.replace(
        'output = "head"', 'output = "boxes"\n  scores_output = "scores"'))
    one = project(tmp_path / "one", 'outputs = ["head"]\n' + POST)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, SIZE, SIZE)).astype(np.float32)
    plan = build_stage_plan(load_spec(two))
    # the post's inputs take a "head." prefix: its own outputs are called boxes and scores
    assert [t.name for t in plan.stage("ssd.post").inputs] == ["head.boxes", "head.scores"]
    step = next(s for s in plan.steps if s.stage == "ssd.post")
    assert step.bind == {"head.boxes": "ssd:boxes", "head.scores": "ssd:scores"}
    got = run_pipeline(plan, {"images": x})
    want = run_pipeline(build_stage_plan(load_spec(one)), {"images": x})
    assert set(got) == set(want) == {"boxes", "scores", "classes"} and len(want["scores"]) >= 3
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


@pytest.mark.parametrize(("post", "message"), [
    (POST.replace('output = "head"', 'output = "boxes"\n  scores_output = "logits"'),
     "postprocess.scores_output: model has no output 'logits'"),
    (POST.replace('output = "head"', 'output = "scores"\n  scores_output = "boxes"'),
     "postprocess.output: with scores_output, 'scores' must be the boxes [1, N, 4]"),
    (POST.replace('output = "head"', 'output = "boxes"\n  scores_output = "scores"\n'
                  '  layout = "columns"'),
     "postprocess.layout: 'layout' does not apply with scores_output"),
])
def test_two_tensor_head_mistakes(tmp_path: Path, post: str, message: str) -> None:
    root = project(tmp_path, 'outputs = ["boxes", "scores"]\n' + post)
    with pytest.raises(SpecError) as info:
        load_spec(root)
    assert message in str(info.value)

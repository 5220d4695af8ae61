# SPDX-License-Identifier: Apache-2.0
"""A camera frame size chosen at run time (``source_size_min`` / ``source_size_max``): the
preprocess and detection post compute the letterbox / stretch geometry from the ``image_size``
input (model/frame_size.py) and agree, for each size, with the graphs built for that size as a
fixed ``source_size``; the stage plan and manifest carry the bounds; the host reference places
the frame and refuses one outside the bounds."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import jsonschema
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from edgepack.artifact import manifest
from edgepack.model.frame_size import SIZE_INPUT, geometry_tensors, place_frame
from edgepack.model.graph_builder import IR_VERSION, OPSET, GraphBuilder
from edgepack.model.prepost import build_detection_post, build_preprocess, geometry
from edgepack.model.reference import check_frame_size, run_stage
from edgepack.model.tensors import TensorDesc
from edgepack.spec.project import DetectionPost, PreprocessSpec

SIZES = [(48, 64), (31, 77), (120, 160), (20, 20), (64, 64), (100, 30), (21, 159)]
MAX = (120, 160)


def bounded(pre: PreprocessSpec) -> PreprocessSpec:
    return dataclasses.replace(pre, source_size_min=(20, 20), source_size_max=MAX)


def _geometry_graph(pre: PreprocessSpec, dst_h: int, dst_w: int) -> onnx.ModelProto:
    g = GraphBuilder(0)
    geo = geometry_tensors(g, pre, dst_h, dst_w)
    outs = []
    for name in ("src", "new", "lead", "scale"):
        g.op1("Identity", [getattr(geo, name)], out=name)
        outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [2]))
    graph = helper.make_graph(g.nodes, "geometry",
                              [helper.make_tensor_value_info(SIZE_INPUT, TensorProto.INT64, [2])],
                              outs, g.initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                             ir_version=IR_VERSION)


@pytest.mark.parametrize("resize", ["letterbox", "stretch"])
def test_graph_geometry_is_the_python_formula(resize: str) -> None:
    """geometry_tensors (run by onnxruntime) gives prepost.geometry's integers for every size
    on a grid, odd paddings and both aspect directions included."""
    pre = PreprocessSpec(source_size=(48, 64), resize=resize)  # type: ignore[arg-type]
    for dst in ((64, 64), (320, 320), (48, 80)):
        session = ort.InferenceSession(_geometry_graph(pre, *dst).SerializeToString(),
                                       providers=["CPUExecutionProvider"])
        for h in range(7, 400, 29):
            for w in range(5, 700, 37):
                got = dict(zip(["src", "new", "lead", "scale"],
                               session.run(None, {SIZE_INPUT: np.array([h, w], np.int64)}),
                               strict=True))
                want = geometry(dataclasses.replace(pre, source_size=(h, w)), *dst)
                assert tuple(got["new"]) == (want.new_h, want.new_w), (h, w, dst)
                assert tuple(got["lead"]) == (want.top, want.left), (h, w, dst)
                np.testing.assert_allclose(got["scale"], [want.scale_y, want.scale_x], rtol=1e-6)


@pytest.mark.parametrize("resize", ["letterbox", "stretch"])
@pytest.mark.parametrize("interpolation", ["linear", "nearest"])
@pytest.mark.parametrize("formats", [("bgr", "rgb"), ("gray", "rgb"), ("rgb", "gray")])
def test_bounded_preprocess_matches_fixed_size_graph(resize: str, interpolation: str,
                                                     formats: tuple[str, str]) -> None:
    pixel, model_format = formats
    c_in, c_model = (1 if pixel == "gray" else 3), (1 if model_format == "gray" else 3)
    pre = PreprocessSpec(source_size=(48, 64), resize=resize,  # type: ignore[arg-type]
                         interpolation=interpolation,  # type: ignore[arg-type]
                         pixel_format=pixel, model_format=model_format,  # type: ignore[arg-type]
                         mean=(10.0,) * c_model, std=(255.0,) * c_model, pad_value=114.0)
    desc = TensorDesc("images", "float32", (1, c_model, 64, 64))
    dynamic = build_preprocess(bounded(pre), desc)
    assert [i.name for i in dynamic.graph.input] == ["image", SIZE_INPUT]
    rng = np.random.default_rng(3)
    for h, w in SIZES:
        frame = rng.integers(0, 256, (h, w, c_in), dtype=np.uint8)
        fixed = build_preprocess(dataclasses.replace(pre, source_size=(h, w)), desc)
        want = run_stage(fixed, {"image": frame})["output"]
        got = run_stage(dynamic, {"image": place_frame(frame, MAX),
                                  SIZE_INPUT: np.array([h, w], np.int64)})["output"]
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5, err_msg=f"{h}x{w}")


def test_bounded_detection_post_maps_boxes_and_keypoints_to_the_frame() -> None:
    """The same predictions give the fixed-size post's boxes and keypoints for each frame size
    (source pixels of that frame, clipped to it)."""
    pre = PreprocessSpec(source_size=(48, 64), resize="letterbox")
    post = DetectionPost(output="pred", box_format="cxcywh", has_objectness=False,
                         score_threshold=0.3, iou_threshold=0.5, max_detections=10,
                         extra_columns=6, keypoints=True)
    model_input = TensorDesc("images", "float32", (1, 3, 64, 64))
    pred = TensorDesc("pred", "float32", (1, 30, 4 + 2 + 6))
    rng = np.random.default_rng(5)
    values = rng.uniform(0, 64, (1, 30, 12)).astype(np.float32)
    values[..., 4:6] = rng.uniform(0, 1, (1, 30, 2))
    dynamic = build_detection_post(post, pred, bounded(pre), model_input)
    for h, w in SIZES:
        fixed = build_detection_post(post, pred, dataclasses.replace(pre, source_size=(h, w)),
                                     model_input)
        want = run_stage(fixed, {"pred": values})
        got = run_stage(dynamic, {"pred": values, SIZE_INPUT: np.array([h, w], np.int64)})
        assert want["boxes"].shape[0] > 0
        for name in ("boxes", "extras", "scores"):
            np.testing.assert_allclose(got[name], want[name], rtol=1e-6, atol=1e-4,
                                       err_msg=f"{name} {h}x{w}")
        assert float(got["boxes"][:, 0::2].max()) <= w and float(got["boxes"][:, 1::2].max()) <= h


def test_place_frame_repeats_the_border_once() -> None:
    frame = np.arange(2 * 3 * 1, dtype=np.uint8).reshape(2, 3, 1) + 1
    out = place_frame(frame, (4, 5))
    assert out[:, :, 0].tolist() == [[1, 2, 3, 3, 0],
                                     [4, 5, 6, 6, 0],
                                     [4, 5, 6, 6, 0],
                                     [0, 0, 0, 0, 0]]
    assert place_frame(frame, (2, 3)).tolist() == frame.tolist()


def test_reference_refuses_a_frame_outside_the_bounds() -> None:
    desc = {"name": "image", "shape": [48, 64, 3], "size_min": [20, 30], "size_max": [120, 160]}
    check_frame_size(desc, (20, 160, 3))
    for shape in ((19, 64, 3), (48, 161, 3), (48, 64, 1), (48, 64)):
        with pytest.raises(ValueError, match=r"input 'image': shape .* is outside the bounds "
                                             r"\[20\.\.120, 30\.\.160, 3\]"):
            check_frame_size(desc, shape)


def test_manifest_schema_takes_bounds_only_in_pairs() -> None:
    schema = manifest.schema()
    tensor_schema = {"$ref": "#/$defs/tensor", "$defs": schema["$defs"]}
    tensor = {"name": "image", "dtype": "uint8", "shape": [48, 64, 3], "layout": "HWC"}
    jsonschema.validate({**tensor, "size_min": [20, 30], "size_max": [120, 160]}, tensor_schema)
    for wrong in ({"size_min": [20, 30]}, {"size_min": [20, 30], "size_max": [120]},
                  {"size_min": [0, 30], "size_max": [120, 160]}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**tensor, **wrong}, tensor_schema)


def test_stage_plan_binds_the_frame_size(tmp_path: Path) -> None:
    """vision-demo with bounds: the pipeline input keeps the nominal shape and carries the
    bounds; pre stages read the largest buffer and ``image#size``, the detection post too."""
    from spec_project import write_valid_project

    from edgepack.model.stages import build_stage_plan
    from edgepack.spec.loader import load_spec

    root = write_valid_project(tmp_path)
    toml = root / "edgepack.toml"
    text = toml.read_text().replace(
        "source_size = [480, 640]",
        "source_size = [480, 640]\n    source_size_min = [240, 320]\n"
        "    source_size_max = [720, 1280]")
    toml.write_text(text)
    plan = build_stage_plan(load_spec(root))
    pipe = plan.pipeline()
    assert pipe["inputs"][0] == {"name": "image", "dtype": "uint8", "shape": [480, 640, 3],
                                 "layout": "HWC", "size_min": [240, 320], "size_max": [720, 1280]}
    steps = {s["stage"]: s["bind"] for s in pipe["steps"]}
    assert steps["detector.pre"] == {"image": "image", SIZE_INPUT: "image#size"}
    assert steps["detector.post"][SIZE_INPUT] == "image#size"
    assert steps["classifier.crop"]["image"] == "image"
    assert plan.stage("detector.pre").inputs[0].shape == (720, 1280, 3)
    assert plan.stage("classifier.crop").inputs[0].shape == (720, 1280, 3)


def test_image_calibration_of_a_bounded_input(tmp_path: Path) -> None:
    """int8 calibration images go through the nominal-size preprocessing when the input also
    takes other frame sizes."""
    from PIL import Image
    from test_quantize import INT8, project

    from edgepack.model.ingest import ingest_model
    from edgepack.spec.loader import load_spec

    calib = tmp_path / "calib"
    calib.mkdir()
    rng = np.random.default_rng(5)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (60, 50, 3), dtype=np.uint8)).save(
            calib / f"img{i}.png")
    root = project(tmp_path, INT8, preprocess=True)
    toml = root / "edgepack.toml"
    toml.write_text(toml.read_text().replace(
        "source_size = [40, 48]",
        "source_size = [40, 48]\n    source_size_min = [20, 20]\n    source_size_max = [80, 96]"))
    spec = load_spec(root)
    pre = spec.models[0].inputs[0].preprocess
    assert pre is not None and pre.bounded
    m = ingest_model(spec.models[0])
    assert m.quantization is not None and m.quantization.agreement.samples == 3


def test_bench_input_keeps_a_frame_within_the_bounds(tmp_path: Path) -> None:
    """``edgepack bench --input``: an image or .npy within the bounds runs at its own size; an
    image outside them is resized to source_size, an .npy outside is refused naming them."""
    from PIL import Image

    from edgepack.bench.inputs import load_inputs
    from edgepack.errors import UsageError

    camera = {"pipeline": {"inputs": [{"name": "image", "dtype": "uint8", "shape": [48, 64, 3],
                                       "layout": "HWC", "size_min": [20, 30],
                                       "size_max": [120, 160]}], "steps": [], "outputs": {}},
              "models": [{"name": "det", "preprocess": {"pixel_format": "rgb"}}]}
    Image.fromarray(np.full((100, 150, 3), 7, np.uint8)).save(tmp_path / "own.png")
    Image.fromarray(np.full((10, 150, 3), 7, np.uint8)).save(tmp_path / "small.png")
    said: list[str] = []
    own = load_inputs(tmp_path / "own.png", camera, said.append)
    assert np.load(io.BytesIO(own.arrays["image"])).shape == (100, 150, 3) and not said
    small = load_inputs(tmp_path / "small.png", camera, said.append)
    assert np.load(io.BytesIO(small.arrays["image"])).shape == (48, 64, 3)
    assert "resized to the declared source_size 64x48" in said[0]
    np.save(tmp_path / "x.npy", np.zeros((30, 40, 3), np.uint8))
    assert load_inputs(tmp_path / "x.npy", camera).kind == "npy"
    np.save(tmp_path / "x.npy", np.zeros((30, 200, 3), np.uint8))
    with pytest.raises(UsageError, match=r"is uint8 \[48, 64, 3\] \(height 20\.\.120, width "
                                         r"30\.\.160\), the file holds uint8 \[30, 200, 3\]"):
        load_inputs(tmp_path / "x.npy", camera)

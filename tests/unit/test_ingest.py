# SPDX-License-Identifier: Apache-2.0
"""Model ingest: opset conversion, fixed shapes, and refusals whose messages name the problem."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgepack.errors import ModelError
from edgepack.model import zoo
from edgepack.model.equivalence import run_onnxruntime
from edgepack.model.ingest import ingest_model
from edgepack.spec.project import ClassificationPost, DetectionPost, InputSpec, ModelSpec


def save(tmp_path: Path, model: onnx.ModelProto, name: str = "m.onnx") -> Path:
    path = tmp_path / name
    path.write_bytes(model.SerializeToString())
    return path


def opset11_model() -> onnx.ModelProto:
    """Ops whose signature changed after opset 11 (Squeeze/Unsqueeze axes, Softmax axis,
    Clip, ReduceMean), with a symbolic batch dimension."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])
    lo = numpy_helper.from_array(np.array(-1.0, np.float32), "lo")
    hi = numpy_helper.from_array(np.array(1.5, np.float32), "hi")
    nodes = [
        helper.make_node("Squeeze", ["x"], ["s"], axes=[2]),
        helper.make_node("Clip", ["s", "lo", "hi"], ["c"]),
        helper.make_node("Softmax", ["c"], ["sm"], axis=1),
        helper.make_node("Unsqueeze", ["sm"], ["u"], axes=[0]),
        helper.make_node("ReduceMean", ["u"], ["y"], axes=[0], keepdims=0),
    ]
    graph = helper.make_graph(nodes, "old", [x], [y], [lo, hi])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)], ir_version=6)


def test_opset11_converted_to_17_with_fixed_shapes(tmp_path: Path) -> None:
    path = save(tmp_path, opset11_model())
    got = ingest_model(ModelSpec("m", path, (InputSpec("x", (2, 4, 1)),)))
    assert got.source_opset == 11 and got.opset == 17
    assert [(o.domain, o.version) for o in got.onnx.opset_import] == [("", 17)]
    assert got.inputs[0].shape == (2, 4, 1) and got.outputs[0].shape == (2, 4)
    assert got.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert all(name for _, name in got.ops)  # unnamed nodes get names
    x = np.random.default_rng(0).normal(0, 2, (2, 4, 1)).astype(np.float32)
    (expected,) = run_onnxruntime(opset11_model(), {"x": x})
    (actual,) = run_onnxruntime(got.onnx, {"x": x})
    np.testing.assert_allclose(actual, expected, rtol=1e-6)


def test_detector_ingest_fixes_symbolic_dims_and_optimises(tmp_path: Path) -> None:
    model = zoo.yolo_detector(seed=0)
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    model.graph.output[0].type.tensor_type.shape.dim[1].dim_param = "boxes"
    path = save(tmp_path, model)
    got = ingest_model(ModelSpec("detector", path, (InputSpec("images", (1, 3, 320, 320)),),
                                 DetectionPost("predictions")))
    assert got.outputs[0].shape == (1, 1500, 13)
    assert got.optimize_report["fold_batchnorm"] == 9
    assert "Shape" not in {op for op, _ in got.ops}
    assert got.max_abs_diff["predictions"] < 1e-2
    for vi in got.onnx.graph.value_info:
        assert all(d.HasField("dim_value") for d in vi.type.tensor_type.shape.dim)


def refusal(tmp_path: Path, model: onnx.ModelProto | bytes, spec_inputs: tuple[InputSpec, ...],
            post: ClassificationPost | None = None) -> str:
    path = tmp_path / "bad.onnx"
    path.write_bytes(model if isinstance(model, bytes) else model.SerializeToString())
    with pytest.raises(ModelError) as info:
        ingest_model(ModelSpec("bad", path, spec_inputs, post))
    assert str(path) in str(info.value)
    return str(info.value)


CLASSIFIER_INPUT = (InputSpec("input", (1, 3, 96, 96)),)


def test_refuses_unknown_input_and_lists_the_inputs(tmp_path: Path) -> None:
    msg = refusal(tmp_path, zoo.mobilenet_classifier(), (InputSpec("image", (1, 3, 96, 96)),))
    assert "no input 'image'" in msg and "its inputs are: input" in msg


def test_refuses_unknown_postprocess_output(tmp_path: Path) -> None:
    msg = refusal(tmp_path, zoo.mobilenet_classifier(), CLASSIFIER_INPUT,
                  ClassificationPost("scores"))
    assert "postprocess output 'scores'" in msg and "logits" in msg


def test_refuses_shape_that_contradicts_the_model(tmp_path: Path) -> None:
    msg = refusal(tmp_path, zoo.mobilenet_classifier(), (InputSpec("input", (1, 3, 64, 96)),))
    assert "dimension 2 is 96 in the model but 64 in the spec" in msg
    msg = refusal(tmp_path, zoo.mobilenet_classifier(), (InputSpec("input", (1, 3, 96)),))
    assert "rank 4" in msg


def test_refuses_opset_outside_range(tmp_path: Path) -> None:
    for version in (10, 24):
        model = opset11_model()
        model.opset_import[0].version = version
        assert f"opset {version} is outside the accepted range 11..23" in refusal(
            tmp_path, model, (InputSpec("x", (2, 4, 1)),))


def test_refuses_non_standard_domain(tmp_path: Path) -> None:
    model = zoo.mobilenet_classifier()
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    assert "non-standard operator domain 'com.microsoft'" in refusal(
        tmp_path, model, CLASSIFIER_INPUT)


def test_refuses_checker_failure_and_garbage(tmp_path: Path) -> None:
    model = zoo.mobilenet_classifier()
    model.graph.node[0].input[0] = "missing_tensor"
    assert "ONNX checker failed" in refusal(tmp_path, model, CLASSIFIER_INPUT)
    assert "not an ONNX model" in refusal(tmp_path, b"\x00garbage\xff" * 10, CLASSIFIER_INPUT)


def test_refuses_input_without_fixed_shape(tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    extra = helper.make_tensor_value_info("extra", TensorProto.FLOAT, ["N", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])
    graph = helper.make_graph([helper.make_node("Add", ["x", "extra"], ["y"], name="add")], "g",
                              [x, extra], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    msg = refusal(tmp_path, model, (InputSpec("x", (1, 4)),))
    assert "input 'extra' has no fixed shape" in msg and "`shape`" in msg


def test_refuses_ops_the_runtime_lacks(tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Det", ["x"], ["y"], name="det_node")],
                              "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    msg = refusal(tmp_path, model, (InputSpec("x", (1, 4, 4)),))
    assert "missing ops: Det x1" in msg and "does not implement" in msg


def test_refuses_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="cannot read model file"):
        ingest_model(ModelSpec("m", tmp_path / "nope.onnx", CLASSIFIER_INPUT))

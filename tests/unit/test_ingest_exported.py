# SPDX-License-Identifier: Apache-2.0
"""Ingest of models as exporters write them: shape chains folded before the static-shape
check, opsets 11..23 (down-conversion and function expansion), external data beside the model
and confined to its folder, data-dependent shapes refused with the node and where to cut."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from exported_graphs import (
    channel_shuffle,
    function_ops,
    nonzero_gather,
    opset18_signatures,
    value_dependent_reshape,
    vit_attention_reshape,
    yolov8_head,
)
from onnx import TensorProto, helper, numpy_helper

from edgepack.errors import ModelError
from edgepack.model.equivalence import run_onnxruntime
from edgepack.model.ingest import ingest_model
from edgepack.model.opset import to_canonical
from edgepack.model.optimize import optimize
from edgepack.spec.project import InputSpec, ModelSpec


def save(folder: Path, model: onnx.ModelProto, name: str = "model.onnx") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(model.SerializeToString())
    return path


def refusal(path: Path, inputs: tuple[InputSpec, ...]) -> str:
    with pytest.raises(ModelError) as info:
        ingest_model(ModelSpec("m", path, inputs))
    message = str(info.value)
    assert message.startswith(str(path)) and "Traceback" not in message
    return message


@pytest.mark.parametrize(("build", "shape"), [
    (yolov8_head, (1, 16, 8, 8)),
    (vit_attention_reshape, (1, 5, 8)),
    (channel_shuffle, (1, 8, 4, 4)),
])
def test_shape_chains_fold_before_the_static_check(tmp_path: Path, build: object,
                                                   shape: tuple[int, ...]) -> None:
    model = build()  # type: ignore[operator]
    got = ingest_model(ModelSpec("m", save(tmp_path, model), (InputSpec("x", shape),)))
    ops = {op for op, _ in got.ops}
    assert "Shape" not in ops and "Range" not in ops and "Div" not in ops
    x = np.random.default_rng(1).normal(0, 1, shape).astype(np.float32)
    (expected,) = run_onnxruntime(model, {"x": x})
    (actual,) = run_onnxruntime(got.onnx, {"x": x})
    np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-6)
    assert got.outputs[0].shape == expected.shape


def test_yolov8_slice_gets_a_static_shape(tmp_path: Path) -> None:
    got = ingest_model(ModelSpec("m", save(tmp_path, yolov8_head()),
                                 (InputSpec("x", (1, 16, 8, 8)),)))
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in got.onnx.graph.value_info}
    assert shapes["box"] == [1, 4, 64] and shapes["cls"] == [1, 4, 64]
    assert got.outputs[0].shape == (1, 8, 64)


def test_data_dependent_shape_names_the_node_the_chain_and_the_cut(tmp_path: Path) -> None:
    msg = refusal(save(tmp_path, nonzero_gather()), (InputSpec("x", (1, 6)),))
    assert "tensor 'nz' (output of NonZero '/post/NonZero') has no static shape" in msg
    assert "depends on the values of its inputs" in msg
    assert ("NonZero '/post/NonZero' -> Transpose '/post/Transpose' -> GatherND "
            "'/post/GatherND' -> Relu '/post/Relu' -> output 'y'") in msg
    assert "cut the model before '/post/NonZero' (make 'mask' its outputs)" in msg


def test_value_computed_reshape_names_where_its_shape_comes_from(tmp_path: Path) -> None:
    msg = refusal(save(tmp_path, value_dependent_reshape()), (InputSpec("x", (1, 6)),))
    assert "output of Reshape '/pick/Reshape'" in msg
    assert ("shape input 'shape' is computed from tensor values at run time (Concat "
            "'/pick/Concat' <- Add '/pick/Add' <- ArgMax '/pick/ArgMax')") in msg


@pytest.mark.parametrize("opset", range(18, 24))
def test_changed_signatures_come_down_to_17(tmp_path: Path, opset: int) -> None:
    model = opset18_signatures(opset)
    got = ingest_model(ModelSpec("m", save(tmp_path, model), (InputSpec("x", (1, 5, 6, 6)),)))
    assert got.source_opset == opset and got.opset == 17
    assert [(o.domain, o.version) for o in got.onnx.opset_import] == [("", 17)]
    x = np.random.default_rng(opset).normal(0, 1, (1, 5, 6, 6)).astype(np.float32)
    expected = run_onnxruntime(model, {"x": x})
    actual = run_onnxruntime(got.onnx, {"x": x})
    for e, a in zip(expected, actual, strict=True):
        np.testing.assert_allclose(a, e, rtol=1e-6, atol=1e-6)
    by_name = {n.name: n for n in got.onnx.graph.node}
    split = by_name["/split"]
    sizes = next(i for i in got.onnx.graph.initializer if i.name == split.input[1])
    assert numpy_helper.to_array(sizes).tolist() == [3, 2]  # num_outputs=2 over 5 channels
    assert all(len(by_name[n].input) == 1 for n in ("/mean", "/peak", "/all"))


@pytest.mark.parametrize("opset", [18, 20, 21, 23])
def test_ops_newer_than_17_expand_to_their_function_bodies(opset: int) -> None:
    model = function_ops(opset)
    converted, _ = optimize(to_canonical("f.onnx", model, opset))
    ops = {n.op_type for n in converted.graph.node}
    assert not ops & {"Mish", "Gelu", "GroupNormalization", "CastLike", "Sum", "Constant"}
    x = np.random.default_rng(0).normal(0, 1, (1, 4, 3, 3)).astype(np.float32)
    for e, a in zip(run_onnxruntime(model, {"x": x}), run_onnxruntime(converted, {"x": x}),
                    strict=True):
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-6)


def test_new_op_without_function_body_is_refused_by_name(tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.INT32, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.INT32, [1, 4])
    graph = helper.make_graph([helper.make_node("BitwiseNot", ["x"], ["y"], name="/not")],
                              "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)],
                              ir_version=8)
    msg = refusal(save(tmp_path, model), (InputSpec("x", (1, 4)),))
    assert "node '/not' (BitwiseNot) was added in opset 18" in msg


def test_attribute_opset_17_lacks_is_refused_unless_default(tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 5, 5])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 4, 4])
    for ceil_mode, ok in ((0, True), (1, False)):
        node = helper.make_node("LpPool", ["x"], ["y"], kernel_shape=[2, 2], p=2,
                                ceil_mode=ceil_mode, name="/pool")
        graph = helper.make_graph([node], "g", [x], [y])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)],
                                  ir_version=9)
        path = save(tmp_path / str(ok), model)
        if ok:
            got = to_canonical(str(path), model, 18)
            assert not [a for n in got.graph.node for a in n.attribute if a.name == "ceil_mode"]
        else:
            assert "node '/pool' (LpPool) sets attribute ceil_mode=1, which opset 17 lacks" in (
                refusal(path, (InputSpec("x", (1, 2, 5, 5)),)))


@pytest.mark.parametrize(("pool", "attrs"), [
    ("AveragePool", {"kernel_shape": [2, 3], "dilations": [2, 2], "pads": [1, 0, 1, 2],
                     "strides": [2, 1], "count_include_pad": 0}),
    ("AveragePool", {"kernel_shape": [2, 2], "dilations": [2, 1], "pads": [1, 1, 1, 1],
                     "ceil_mode": 1, "count_include_pad": 1, "strides": [2, 2]}),
    ("MaxPool", {"kernel_shape": [2, 2], "strides": [2, 2], "pads": [0, 0, 1, 1],
                 "ceil_mode": 1}),
])
def test_pools_opset_17_cannot_express_become_strided_slices(pool: str,
                                                             attrs: dict[str, Any]) -> None:
    """AveragePool dilations (19) and the last ceil_mode window that opset 19 drops become
    Pad + strided Slices + Sum/Div or Max, and match onnxruntime at the model's opset."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 6, 7])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph([helper.make_node(pool, ["x"], ["y"], name="/pool", **attrs)],
                              "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)], ir_version=9)
    converted = to_canonical("pool.onnx", model, 19)
    assert pool not in {n.op_type for n in converted.graph.node}
    data = np.random.default_rng(4).normal(0, 1, (1, 3, 6, 7)).astype(np.float32)
    (want,) = run_onnxruntime(model, {"x": data})
    (got,) = run_onnxruntime(converted, {"x": data})
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_dynamo_export_with_data_beside_the_model(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """torch's dynamo exporter: opset 18, weights in model.onnx.data; ingest from elsewhere."""
    model = yolov8_head(channels=32)
    model.opset_import[0].version = 18
    folder = tmp_path / "export"
    folder.mkdir()
    onnx.save_model(model, folder / "model.onnx", save_as_external_data=True,
                    all_tensors_to_one_file=True, location="model.onnx.data", size_threshold=0)
    assert (folder / "model.onnx.data").stat().st_size >= 8 * 32 * 4
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    got = ingest_model(ModelSpec("m", folder / "model.onnx", (InputSpec("x", (1, 32, 8, 8)),)))
    assert got.source_opset == 18
    assert list(got.data_files) == ["model.onnx.data"]
    x = np.random.default_rng(2).normal(0, 1, (1, 32, 8, 8)).astype(np.float32)
    (expected,) = run_onnxruntime(yolov8_head(channels=32), {"x": x})
    np.testing.assert_allclose(run_onnxruntime(got.onnx, {"x": x})[0], expected, rtol=1e-6)


def external_model(folder: Path, location: str, **fields: str) -> Path:
    """A model whose weight names ``location`` as its data file (the bytes are not moved)."""
    model = yolov8_head()
    weight = next(i for i in model.graph.initializer if i.name == "w")
    weight.ClearField("float_data")
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    entry = weight.external_data.add()
    entry.key, entry.value = "location", location
    for key, value in fields.items():
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    return save(folder, model)


@pytest.mark.parametrize(("location", "expected"), [
    ("../outside.data", "climbs out with '..'"),
    ("/etc/passwd", "an absolute path"),
    ("C:\\weights.data", "an absolute path"),
    ("missing.data", "not a file beside the model"),
    ("link.data", "a link that leaves the model's folder"),
])
def test_external_data_is_confined_to_the_models_folder(tmp_path: Path, location: str,
                                                        expected: str) -> None:
    (tmp_path / "outside.data").write_bytes(b"\0" * 4096)
    folder = tmp_path / "model"
    folder.mkdir()
    os.symlink(tmp_path / "outside.data", folder / "link.data")
    msg = refusal(external_model(folder, location), (InputSpec("x", (1, 16, 8, 8)),))
    assert f"tensor 'w' stores its data in {location!r}" in msg and expected in msg


def test_external_data_range_outside_the_file_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    path = external_model(folder, "w.data", offset="8", length="512")  # 8 x 16 floats
    (folder / "w.data").write_bytes(b"\0" * 16)
    msg = refusal(path, (InputSpec("x", (1, 16, 8, 8)),))
    assert "tensor 'w' reads bytes 8..520 of 'w.data', which has 16 bytes" in msg


def test_local_functions_are_inlined(tmp_path: Path) -> None:
    body = onnx.helper.make_function(
        "pkg.custom", "DoubleRelu", ["a"], ["b"],
        [helper.make_node("Relu", ["a"], ["r"]), helper.make_node("Add", ["r", "r"], ["b"])],
        [helper.make_opsetid("", 18)])
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph([helper.make_node("DoubleRelu", ["x"], ["y"], domain="pkg.custom",
                                                name="/double")], "g", [x], [y])
    model = helper.make_model(graph, functions=[body], ir_version=8, opset_imports=[
        helper.make_opsetid("", 18), helper.make_opsetid("pkg.custom", 1)])
    got = ingest_model(ModelSpec("m", save(tmp_path, model), (InputSpec("x", (1, 4)),)))
    assert [op for op, _ in got.ops] == ["Relu", "Add"]


@pytest.mark.parametrize("op", ["ConstantOfShape", "Expand", "Tile"])
def test_sizes_read_from_the_model_are_checked_before_allocating(tmp_path: Path,
                                                                  op: str) -> None:
    """A 10^5 x 10^5 constant (40 GB) is neither folded nor handed to onnxruntime."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [100_000, 100_000])
    big = numpy_helper.from_array(np.array([100_000, 100_000], np.int64), "big")
    one = numpy_helper.from_array(np.ones((1, 1), np.float32), "one")
    grow = {"ConstantOfShape": helper.make_node("ConstantOfShape", ["big"], ["c"], name="/grow"),
            "Expand": helper.make_node("Expand", ["one", "big"], ["c"], name="/grow"),
            "Tile": helper.make_node("Tile", ["one", "big"], ["c"], name="/grow")}[op]
    graph = helper.make_graph([grow, helper.make_node("Add", ["x", "c"], ["y"], name="/add")],
                              "g", [x], [y], [big, one])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    msg = refusal(save(tmp_path, model), (InputSpec("x", (1, 1)),))
    assert f"tensor 'c' (output of {op} '/grow') would have shape [100000, 100000]" in msg


@pytest.mark.parametrize("op", ["ReduceMax", "ReduceMin"])
def test_bool_reduce_of_opset_20_runs_as_uint8_at_17(op: str) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.BOOL, [3, 4])
    y = helper.make_tensor_value_info("y", TensorProto.BOOL, [3])
    axes = numpy_helper.from_array(np.array([1], np.int64), "axes")
    graph = helper.make_graph([helper.make_node(op, ["x", "axes"], ["y"], keepdims=0,
                                                name="/any")], "g", [x], [y], [axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], ir_version=9)
    converted = to_canonical("b.onnx", model, 20)
    assert [n.op_type for n in converted.graph.node] == ["Cast", op, "Cast"]
    feeds = {"x": np.array([[0, 0, 0, 0], [0, 1, 0, 0], [1, 1, 1, 1]], bool)}
    (expected,) = run_onnxruntime(model, feeds)
    (actual,) = run_onnxruntime(converted, feeds)
    assert actual.dtype == np.bool_ and actual.tolist() == expected.tolist()


def _single_node(node: onnx.NodeProto, inputs: list[onnx.ValueInfoProto],
                 initializers: list[onnx.TensorProto], opset: int) -> onnx.ModelProto:
    graph = helper.make_graph([node], "g", inputs,
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              initializer=initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                             ir_version=9)


@pytest.mark.parametrize(("mode", "attrs"), [
    ("linear", {"antialias": 1}),
    ("cubic", {"antialias": 1, "cubic_coeff_a": -0.5}),
    ("linear", {"coordinate_transformation_mode": "half_pixel_symmetric"}),
])
def test_resize_opset_17_lacks_becomes_two_matmuls(mode: str, attrs: dict[str, Any]) -> None:
    """Resize antialias (18) and half_pixel_symmetric (19) as A_h @ X @ A_w^T; matches
    onnxruntime at the model's opset."""
    sizes = numpy_helper.from_array(np.array([1, 3, 9, 20], np.int64), "sizes")
    node = helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], mode=mode, **attrs)
    model = _single_node(node, [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                              [1, 3, 24, 32])], [sizes], 19)
    converted = to_canonical("resize.onnx", model, 19)
    assert [n.op_type for n in converted.graph.node] == ["MatMul", "MatMul"]
    x = np.random.default_rng(6).normal(0, 1, (1, 3, 24, 32)).astype(np.float32)
    (want,) = run_onnxruntime(model, {"x": x})
    (got,) = run_onnxruntime(converted, {"x": x})
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("op", ["ScatterElements", "ScatterND"])
@pytest.mark.parametrize("reduction", ["max", "min"])
def test_scatter_min_max_with_duplicate_indices(op: str, reduction: str) -> None:
    """ScatterElements/ScatterND reduction min/max (18), indices known only at run time and
    repeated, as a one-hot comparison; matches onnxruntime at opset 18."""
    if op == "ScatterElements":
        index, update = (2, 3), (2, 3)
        indices = np.array([[1, 3, 1], [-1, 0, 0]], np.int64)
        attrs: dict[str, Any] = {"axis": 1}
    else:
        index, update = (3, 1), (3, 5)
        indices = np.array([[1], [3], [1]], np.int64)
        attrs = {}
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 5]),
              helper.make_tensor_value_info("i", TensorProto.INT64, list(index)),
              helper.make_tensor_value_info("u", TensorProto.FLOAT, list(update))]
    model = _single_node(helper.make_node(op, ["x", "i", "u"], ["y"], reduction=reduction,
                                          **attrs), inputs, [], 18)
    converted = to_canonical("scatter.onnx", model, 18)
    assert op not in {n.op_type for n in converted.graph.node}
    rng = np.random.default_rng(7)
    feeds: dict[str, np.ndarray] = {"x": rng.normal(0, 1, (4, 5)).astype(np.float32), "i": indices,
             "u": rng.normal(0, 2, update).astype(np.float32)}
    (want,) = run_onnxruntime(model, feeds)
    (got,) = run_onnxruntime(converted, feeds)
    np.testing.assert_array_equal(got, want)


def test_rewrites_check_sizes_read_from_the_model_first(tmp_path: Path) -> None:
    """A wrap pad of 2^40 elements is refused by name before any index array is made."""
    pads = numpy_helper.from_array(np.array([0, 1 << 40, 0, 0], np.int64), "pads")
    graph = helper.make_graph(
        [helper.make_node("Pad", ["x", "pads"], ["y"], mode="wrap", name="/pad")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["h", "w"])], initializer=[pads])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)], ir_version=9)
    msg = refusal(save(tmp_path, model), (InputSpec("x", (2, 3)),))
    assert "node '/pad' (Pad) pads axis 1 of size 3" in msg and "wrap pads up to" in msg

# SPDX-License-Identifier: Apache-2.0
"""Lowering and the device graph format: round trip, memory plan, refusals, the C++ loader's
bounds checks, data-dependent ops, whole models vs onnxruntime, and a backend plugin."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from graph_runner import run_device, run_ort
from onnx import TensorProto, helper, numpy_helper
from sdk_host import SdkBuild

from edgepack.errors import ModelError
from edgepack.lower import device_graph as dg
from edgepack.lower.lowering import SUPPORTED_OPS, lower, unsupported_ops
from edgepack.model import zoo
from edgepack.model.optimize import optimize

RNG = np.random.default_rng(7)


def _model(nodes: list[onnx.NodeProto], inputs: list[onnx.ValueInfoProto],
           outputs: list[str],
           inits: dict[str, np.ndarray | np.generic] | None = None) -> onnx.ModelProto:
    g = helper.make_graph(
        nodes, "t", inputs,
        [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in outputs],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return onnx.shape_inference.infer_shapes(m)


def _small_net() -> onnx.ModelProto:
    w1 = RNG.standard_normal((8, 3, 3, 3)).astype(np.float32)
    w2 = RNG.standard_normal((8, 8, 1, 1)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1], name="c1"),
        helper.make_node("Relu", ["c1"], ["r1"], name="r1"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="c2"),
        helper.make_node("Add", ["c2", "r1"], ["a"], name="add"),
        helper.make_node("GlobalAveragePool", ["a"], ["g"], name="gap"),
        helper.make_node("Relu", ["g"], ["s"], name="r2"),
        helper.make_node("Flatten", ["s"], ["y"], name="flat"),
    ]
    return _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                  ["y"], {"w1": w1, "w2": w2})


@pytest.fixture(scope="module")
def build(sdk_host: SdkBuild) -> Path:
    return sdk_host.build


def test_round_trip_parses_back() -> None:
    model = _small_net()
    g = dg.parse(lower(model))
    names = [t.name for t in g.tensors]
    assert [names[i] for i in g.inputs] == ["x"]
    assert [names[i] for i in g.outputs] == ["y"]
    # The first Relu is fused into its Conv (the Conv output's only consumer); the second
    # follows a pool and stays a node (Add + Relu: test_fused_epilogues.py).
    ops = [n.op_type for n in g.nodes]
    assert ops == ["Conv", "Conv", "Add", "GlobalAveragePool", "Relu", "Flatten"]
    assert g.nodes[0].attrs["activation"].value == "Relu"
    w1 = next(t for t in g.tensors if t.name == "w1")
    assert w1.is_constant and w1.offset % 64 == 0
    assert w1.data is not None
    np.testing.assert_array_equal(w1.data, numpy_helper.to_array(model.graph.initializer[0]))
    conv = g.nodes[0]
    assert conv.attrs["pads"].value == [1, 1, 1, 1]
    assert conv.attrs["strides"].value == [1, 1]  # default resolved
    assert conv.attrs["kernel_shape"].value == [3, 3]


def test_activation_fused_when_single_consumer() -> None:
    w = RNG.standard_normal((4, 3, 1, 1)).astype(np.float32)
    m = _model([helper.make_node("Conv", ["x", "w"], ["c"]),
                helper.make_node("Clip", ["c", "lo", "hi"], ["y"])],
               [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])], ["y"],
               {"w": w, "lo": np.float32(0), "hi": np.float32(6)})
    g = dg.parse(lower(m))
    assert [n.op_type for n in g.nodes] == ["Conv"]
    assert g.nodes[0].attrs["activation"].value == "Clip"
    assert g.nodes[0].attrs["activation_max"].value == 6.0


def _output_identities() -> onnx.ModelProto:
    """Graph outputs written by Identity: of an internal tensor that another node also reads
    (y), of that tensor a second time (y2), of the graph input (xo) and of a constant (co)."""
    f32 = TensorProto.FLOAT
    return _model([helper.make_node("Relu", ["x"], ["r"]),
                   helper.make_node("Identity", ["r"], ["y"]),
                   helper.make_node("Sigmoid", ["r"], ["s"]),
                   helper.make_node("Identity", ["r"], ["y2"]),
                   helper.make_node("Identity", ["x"], ["xo"]),
                   helper.make_node("Identity", ["c"], ["co"])],
                  [helper.make_tensor_value_info("x", f32, [2, 3])], ["y", "s", "y2", "xo", "co"],
                  {"c": np.arange(3, dtype=np.float32)})


def test_identity_to_a_graph_output_is_dropped(build: Path) -> None:
    """The producer of an Identity's internal input writes the graph output itself (no copy at
    run time); an Identity stays where its input is a graph input, a constant or already a
    graph output."""
    model = _output_identities()
    g = dg.parse(lower(model))
    names = [t.name for t in g.tensors]
    nodes = [(n.op_type, [names[i] for i in n.inputs if i is not None],
              [names[o] for o in n.outputs]) for n in g.nodes]
    assert nodes == [("Relu", ["x"], ["y"]), ("Sigmoid", ["y"], ["s"]),
                     ("Identity", ["y"], ["y2"]), ("Identity", ["x"], ["xo"]),
                     ("Identity", ["c"], ["co"])]
    x = RNG.standard_normal((2, 3)).astype(np.float32)
    got, want = run_device(build, model, {"x": x}), run_ort(model, {"x": x})
    for name, value in want.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-6, err_msg=name)


def _assert_no_overlap(g: dg.DeviceGraph) -> None:
    """No two tensors alive at one node share arena bytes, but for an in-place Concat's inputs
    inside its output (dg.concat_in_place) and a shape-only op's output on its input (the same
    bytes: dg.view_aliases)."""
    spans = dg.lifetimes(g)
    groups = dg.concat_in_place(g)
    inside = {(out, t) for out, parts in groups.items() for t, _ in parts}
    aliases = dg.view_aliases(g, groups)
    for view, src in aliases.items():
        assert g.tensors[view].offset == g.tensors[src].offset, "a view is not on its input"
    placed = [(t, g.tensors[t].offset, g.tensors[t].offset + g.tensors[t].nbytes, *spans[t])
              for t in spans]
    for i, (t1, o1, e1, f1, l1) in enumerate(placed):
        assert e1 <= g.arena_size
        for t2, o2, e2, f2, l2 in placed[i + 1:]:
            r1, r2 = aliases.get(t1, t1), aliases.get(t2, t2)  # a view stands for its input
            if r1 == r2 or (r1, r2) in inside or (r2, r1) in inside:
                continue
            if f1 <= l2 and f2 <= l1:  # both alive at some node
                assert e1 <= o2 or e2 <= o1, "live tensors overlap in the arena"


def test_memory_plan_has_no_overlapping_live_tensors() -> None:
    model = optimize(zoo.mobilenet_classifier(seed=0))[0]
    g = dg.parse(lower(model))
    _assert_no_overlap(g)
    spans = dg.lifetimes(g)
    total = sum(g.tensors[t].nbytes for t in spans)
    assert g.arena_size < total  # lifetimes let buffers share space


def _concat_net(axis: int = 1, extra: list[onnx.NodeProto] | None = None,
                outputs: tuple[str, ...] = ("y",), channels: int = 8,
                hw: tuple[int, int] = (8, 8)) -> onnx.ModelProto:
    """Two convolutions of x concatenated (a YOLO C2f block's shape), then a 1x1 convolution;
    b is read again after the Concat."""
    w1 = RNG.standard_normal((channels, 4, 3, 3)).astype(np.float32)
    w2 = RNG.standard_normal((channels, 4, 1, 1)).astype(np.float32)
    w3 = RNG.standard_normal((6, 2 * channels if axis == 1 else channels, 1, 1)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a"], ["b"]),
        helper.make_node("Conv", ["x", "w2"], ["c"]),
        helper.make_node("Concat", ["b", "c"], ["cat"], axis=axis),
        helper.make_node("Conv", ["cat", "w3"], ["d"]),
        helper.make_node("ReduceMean", ["b"], ["m"], keepdims=1),
        helper.make_node("Add", ["d", "m"], ["y"]),
        *(extra or []),
    ]
    return _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, *hw])],
                  list(outputs), {"w1": w1, "w2": w2, "w3": w3})


def test_concat_inputs_are_planned_in_place(build: Path) -> None:
    """The Concat's inputs are written where its output keeps them, b stays alive for its read
    after the Concat, and the result matches onnxruntime."""
    model = _concat_net()
    g = dg.parse(lower(model))
    names = {t.name: i for i, t in enumerate(g.tensors)}
    groups = dg.concat_in_place(g)
    b, c, cat = names["b"], names["c"], names["cat"]
    assert groups == {cat: [(b, 0), (c, g.tensors[b].nbytes)]}
    assert g.tensors[b].offset == g.tensors[cat].offset
    assert g.tensors[c].offset == g.tensors[cat].offset + g.tensors[b].nbytes
    _assert_no_overlap(g)
    x = RNG.standard_normal((1, 4, 8, 8)).astype(np.float32)
    want = run_ort(model, {"x": x})["y"]
    for threads in (1, 2):
        np.testing.assert_allclose(run_device(build, model, {"x": x}, threads=threads)["y"], want,
                                   rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", ["axis2", "input_is_output", "two_concats", "unaligned"])
def test_concat_not_in_place(build: Path, case: str) -> None:
    """Where an input cannot lie in place the Concat copies it, with the same result: an axis
    with channels before it, an input that is also a graph output, an input of two Concats
    (only the first takes it), an input whose size leaves the next one off a 64-byte boundary."""
    extra: list[onnx.NodeProto] = []
    outputs: tuple[str, ...] = ("y",)
    kwargs: dict[str, int] = {}
    hw = (8, 8)
    if case == "axis2":
        kwargs["axis"] = 2
    elif case == "input_is_output":
        outputs = ("y", "c")
    elif case == "two_concats":
        extra = [helper.make_node("Concat", ["c", "b"], ["cat2"], axis=1),
                 helper.make_node("ReduceSum", ["cat2"], ["z"], keepdims=0)]
        outputs = ("y", "z")
    else:  # b is 1 x 3 x 5 floats: c would start 60 bytes in
        kwargs["channels"] = 1
        hw = (3, 5)
    model = _concat_net(extra=extra, outputs=outputs, hw=hw, **kwargs)
    g = dg.parse(lower(model))
    names = {t.name: i for i, t in enumerate(g.tensors)}
    groups = dg.concat_in_place(g)
    if case == "two_concats":
        assert list(groups) == [names["cat"]] and names["cat2"] not in groups
    else:
        assert groups == {}
    _assert_no_overlap(g)
    x = RNG.standard_normal((1, 4, *hw)).astype(np.float32)
    want = run_ort(model, {"x": x})
    got = run_device(build, model, {"x": x}, threads=2)
    for name in outputs:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-5)


def _shuffle_net(outputs: tuple[str, ...] = ("y",)) -> onnx.ModelProto:
    """ShuffleNet's channel shuffle between two convolutions: an in-place Concat, Reshape ->
    Transpose -> Reshape, then Flatten; the first Reshape's input is read again after the
    shuffle."""
    w1 = RNG.standard_normal((4, 4, 3, 3)).astype(np.float32)
    w0 = RNG.standard_normal((4, 4, 1, 1)).astype(np.float32)
    w2 = RNG.standard_normal((6, 8, 1, 1)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a1"], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["x", "w0"], ["a0"]),
        helper.make_node("Concat", ["a1", "a0"], ["a"], axis=1),
        helper.make_node("Reshape", ["a", "s5"], ["r1"]),
        helper.make_node("Transpose", ["r1"], ["t"], perm=[0, 2, 1, 3, 4]),
        helper.make_node("Reshape", ["t", "s4"], ["r2"]),
        helper.make_node("Conv", ["r2", "w2"], ["c"]),
        helper.make_node("Flatten", ["c"], ["f"], axis=1),
        helper.make_node("Unsqueeze", ["f", "ax"], ["u"]),
        helper.make_node("ReduceMean", ["u"], ["m"], axes=[2], keepdims=0),
        helper.make_node("ReduceMean", ["a"], ["am"], keepdims=0),
        helper.make_node("Add", ["m", "am"], ["y"]),
    ]
    return _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 6, 6])],
                  list(outputs), {"w1": w1, "w0": w0, "w2": w2,
                                  "s5": np.array([1, 2, 4, 6, 6], np.int64),
                                  "s4": np.array([1, 8, 6, 6], np.int64),
                                  "ax": np.array([1], np.int64)})


@pytest.mark.parametrize("output_f", [False, True])
def test_shape_only_ops_are_planned_on_their_input(build: Path, output_f: bool) -> None:
    """Reshape / Flatten / Unsqueeze outputs lie on their inputs' bytes (a chain on its first
    tensor), except a graph output; the input stays alive for its read after them, and the
    result matches onnxruntime at 1 and 2 threads."""
    outputs = ("y", "f") if output_f else ("y",)
    model = _shuffle_net(outputs)
    g = dg.parse(lower(model))
    names = {t.name: i for i, t in enumerate(g.tensors)}
    groups = dg.concat_in_place(g)
    aliases = dg.view_aliases(g, groups)
    a, r1, t, r2, c, f, u = (names[n] for n in ("a", "r1", "t", "r2", "c", "f", "u"))
    assert list(groups) == [a]  # the Reshape's input is an in-place Concat's output
    want = {r1: a, r2: t} | ({} if output_f else {f: c, u: c})
    assert aliases == want
    for out, root in want.items():
        assert g.tensors[out].offset == g.tensors[root].offset
    _assert_no_overlap(g)
    x = RNG.standard_normal((1, 4, 6, 6)).astype(np.float32)
    ref = run_ort(model, {"x": x})
    for threads in (1, 2):
        got = run_device(build, model, {"x": x}, threads=threads)
        for name in outputs:
            np.testing.assert_allclose(got[name], ref[name], rtol=1e-5, atol=1e-5)


def test_graph_inputs_are_never_overwritten() -> None:
    """Inputs keep their arena space for the whole run, so a second run without setting
    them again computes on the same data."""
    model = optimize(zoo.mobilenet_classifier(seed=0))[0]
    g = dg.parse(lower(model))
    spans = dg.lifetimes(g)
    for t in g.inputs:
        assert spans[t] == (-1, len(g.nodes))
        o1, e1 = g.tensors[t].offset, g.tensors[t].offset + g.tensors[t].nbytes
        for other in spans:
            if other != t:
                o2 = g.tensors[other].offset
                assert e1 <= o2 or o2 + g.tensors[other].nbytes <= o1, g.tensors[other].name


def test_missing_ops_are_refused_once_with_counts() -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    m = _model([helper.make_node("NonZero", ["x"], ["a"], name="nz1"),
                helper.make_node("NonZero", ["x"], ["b"], name="nz2"),
                helper.make_node("Unique", ["x"], ["c"], name="u"),
                helper.make_node("Relu", ["x"], ["y"], name="r")], [x], ["y", "a", "b", "c"])
    assert unsupported_ops(m) == [("NonZero", "nz1"), ("NonZero", "nz2"), ("Unique", "u")]
    with pytest.raises(ModelError) as e:
        lower(m)
    assert str(e.value) == (
        "the CPU runtime cannot run this graph: missing ops: NonZero x2, Unique x1"
    )
    assert "Conv" in SUPPORTED_OPS and "NonZero" not in SUPPORTED_OPS


def test_op_outside_its_table_dtypes_is_refused_at_pack_time() -> None:
    m = _model([helper.make_node("Sqrt", ["x"], ["y"], name="s")],
               [helper.make_tensor_value_info("x", TensorProto.INT32, [4])], ["y"])
    with pytest.raises(ModelError, match=r"op 'Sqrt' \(node 's'\): input dtype int32 is not "
                                         r"supported by the CPU runtime \(float32\)"):
        lower(m)


def test_huge_tensor_from_model_values_is_refused_before_allocating() -> None:
    # Expand of a constant to a shape read from the model: neither folded (which would
    # allocate 40 TB) nor planned; one error naming the tensor.
    m = _model([helper.make_node("Expand", ["c", "s"], ["e"]),
                helper.make_node("Add", ["x", "e"], ["y"])],
               [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])], ["y"],
               {"c": np.ones(1, np.float32), "s": np.array([100000, 100000, 1000], np.int64)})
    with pytest.raises(ModelError, match=r"tensor 'e' would take 40000000000000 bytes"):
        lower(m)


def test_dtype_codes_agree_between_python_and_cpp() -> None:
    import re

    repo = Path(__file__).resolve().parents[2]
    header = (repo / "sdk_templates/src/runtime/runtime.h").read_text(encoding="utf-8")
    enum = re.search(r"enum class DType : int \{([^}]*)\}", header)
    assert enum is not None
    codes = {int(v): k for k, v in re.findall(r"k(\w+) = (\d+)", enum.group(1))}
    names = (repo / "sdk_templates/src/runtime/dtype.cpp").read_text(encoding="utf-8")
    cpp = {code: dict(re.findall(r'case DType::k(\w+):\s*return "(\w+)"', names))[enum_name]
           for code, enum_name in codes.items()}
    assert cpp == {code: name for name, code in dg.DTYPES.items()}
    assert f"kMaxDType = {max(codes)};" in header


def test_tensor_of_a_dtype_without_an_edgepack_code_is_refused_by_name() -> None:
    m = _model([helper.make_node("Relu", ["x"], ["y"])],
               [helper.make_tensor_value_info("x", TensorProto.BFLOAT16, [2])], ["y"])
    with pytest.raises(ModelError, match=r"tensor '(x|y)' has dtype BFLOAT16, which the CPU "
                                         r"runtime does not support \(bool, float16"):
        lower(m)


def test_einsum_equation_not_matching_the_inputs_is_refused() -> None:
    m = _model([helper.make_node("Einsum", ["a", "b"], ["y"], equation="ij,jkl->ik", name="e")],
               [helper.make_tensor_value_info("a", TensorProto.FLOAT, [2, 3]),
                helper.make_tensor_value_info("b", TensorProto.FLOAT, [3, 4])], ["y"])
    with pytest.raises(ModelError, match=r"Einsum.*does not match"):  # one line, no traceback
        lower(m)


def test_op_list_h_is_generated_from_the_capability_table() -> None:
    from edgepack.lower.capabilities import OP_LIST_H, render_op_list

    repo = Path(__file__).resolve().parents[2]
    assert (repo / OP_LIST_H).read_text(encoding="utf-8") == render_op_list(), (
        "op_list.h is stale: run python -m edgepack.lower.capabilities --write"
    )


def test_computed_constant_input_is_refused() -> None:
    m = _model([helper.make_node("Reshape", ["x", "s"], ["y"])],
               [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
                helper.make_tensor_value_info("s", TensorProto.INT64, [2])], ["y"])
    with pytest.raises(ModelError, match="Reshape"):
        lower(m)


def test_loader_refuses_truncated_and_corrupted_graphs(build: Path, tmp_path: Path) -> None:
    graph = tmp_path / "g.epdg"
    graph.write_bytes(lower(_small_net()))
    proc = subprocess.run([str(build / "tests" / "runtime_test"), str(graph)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "truncations refused" in proc.stdout


def test_nms_suppression_and_dynamic_rows(build: Path) -> None:
    boxes = np.array([[[0, 0, 1, 1], [0, 0.1, 1, 1.1], [0, 0.9, 1, 1.9], [0, 10, 1, 11],
                       [0, 10.1, 1, 11.1], [5, 5, 6, 6]]], np.float32)
    scores = np.array([[[0.9, 0.75, 0.6, 0.95, 0.5, 0.3], [0.1, 0.2, 0.8, 0.8, 0.05, 0.7]]],
                      np.float32)
    m = _model([helper.make_node("NonMaxSuppression", ["b", "s", "k", "iou", "th"], ["y"],
                                 center_point_box=0)],
               [helper.make_tensor_value_info("b", TensorProto.FLOAT, boxes.shape),
                helper.make_tensor_value_info("s", TensorProto.FLOAT, scores.shape)], ["y"],
               {"k": np.int64(5), "iou": np.float32(0.5), "th": np.float32(0.25)})
    g = dg.parse(lower(m))
    y = next(t for t in g.tensors if t.name == "y")
    assert y.shape == [10, 3] and y.flags & dg.FLAG_DYNAMIC_DIM0  # 1 batch x 2 classes x 5
    got = run_device(build, m, {"b": boxes, "s": scores})["y"]
    want = run_ort(m, {"b": boxes, "s": scores})["y"]
    assert len(want) < 10  # suppression happened
    np.testing.assert_array_equal(got, want)


def test_dynamic_rows_flow_through_gather_and_roialign(build: Path) -> None:
    """NMS -> Gather(box index) -> RoiAlign on the selected boxes: every tensor after NMS is
    dynamic in dim 0 and the runtime trims it to the actual count."""
    boxes = RNG.uniform(0, 12, (1, 10, 4)).astype(np.float32)
    boxes[..., 2:] = boxes[..., :2] + RNG.uniform(2, 6, (1, 10, 2)).astype(np.float32)
    scores = RNG.uniform(0, 1, (1, 1, 10)).astype(np.float32)
    feat = RNG.standard_normal((1, 3, 16, 16)).astype(np.float32)
    nodes = [
        helper.make_node("NonMaxSuppression", ["b", "s", "k", "iou", "th"], ["sel"]),
        helper.make_node("Gather", ["sel", "two"], ["idx"], axis=1),
        helper.make_node("Squeeze", ["b", "axes0"], ["b2"]),
        helper.make_node("Gather", ["b2", "idx"], ["rois"], axis=0),
        helper.make_node("Gather", ["sel", "zero"], ["bidx"], axis=1),
        helper.make_node("RoiAlign", ["f", "rois", "bidx"], ["y"], output_height=3,
                         output_width=2, sampling_ratio=2, spatial_scale=1.0),
    ]
    m = _model(nodes, [helper.make_tensor_value_info("b", TensorProto.FLOAT, boxes.shape),
                       helper.make_tensor_value_info("s", TensorProto.FLOAT, scores.shape),
                       helper.make_tensor_value_info("f", TensorProto.FLOAT, feat.shape)],
               ["y", "rois"],
               {"k": np.int64(10), "iou": np.float32(0.3), "th": np.float32(0.2),
                "two": np.int64(2), "zero": np.int64(0), "axes0": np.array([0], np.int64)})
    feeds = {"b": boxes, "s": scores, "f": feat}
    got = run_device(build, m, feeds)
    want = run_ort(m, feeds)
    assert 0 < len(want["rois"]) < 10
    np.testing.assert_allclose(got["rois"], want["rois"])
    # RoiAlign interpolates in float32 with a different operation order: atol 1e-4.
    np.testing.assert_allclose(got["y"], want["y"], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["mobilenet_classifier", "yolo_detector"])
def test_zoo_model_matches_onnxruntime(build: Path, name: str) -> None:
    model = optimize(getattr(zoo, name)(seed=0))[0]
    inp = model.graph.input[0]
    shape = [d.dim_value for d in inp.type.tensor_type.shape.dim]
    x = RNG.uniform(0, 1, shape).astype(np.float32)
    got = run_device(build, model, {inp.name: x}, threads=2)
    want = run_ort(model, {inp.name: x})
    for k, ref in want.items():
        # Deep networks: float32 sums in a different order; relative to the output scale.
        scale = float(np.abs(ref).max()) or 1.0
        np.testing.assert_allclose(got[k], ref, rtol=1e-3, atol=1e-4 * scale, err_msg=k)


def test_backend_plugin_claims_relu_and_rest_falls_back(build: Path, tmp_path: Path) -> None:
    plugin = build / "tests" / "libedgepack_backend_test_relu.so"
    model = _small_net()
    x = RNG.standard_normal((1, 3, 16, 16)).astype(np.float32)
    got = run_device(build, model, {"x": x}, extra=["--backend", str(plugin)])
    np.testing.assert_allclose(got["y"], run_ort(model, {"x": x})["y"], rtol=1e-4, atol=1e-5)
    # The runner reports node placement on stderr with --backend; check the plugin ran Relu.
    graph = tmp_path / "g.epdg"
    graph.write_bytes(lower(model))
    (tmp_path / "in").mkdir()
    np.save(tmp_path / "in" / "x.npy", x)
    proc = subprocess.run(
        [str(build / "tools" / "graph_run" / "edgepack-graph-run"), str(graph), "--inputs",
         str(tmp_path / "in"), "--bench", "1", "--backend", str(plugin), "--placement"],
        capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    placement = dict(line.split("\t") for line in proc.stdout.splitlines() if "\t" in line)
    assert placement["r2"] == "test_relu"
    assert {v for k, v in placement.items() if k != "r2"} == {"cpu"}
    # A plugin that is not there is rejected with a reason, and CPU runs everything.
    proc = subprocess.run(
        [str(build / "tools" / "graph_run" / "edgepack-graph-run"), str(graph), "--inputs",
         str(tmp_path / "in"), "--bench", "1", "--backend", str(tmp_path / "missing.so"),
         "--placement"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert "backend" in proc.stderr and "rejected" in proc.stderr

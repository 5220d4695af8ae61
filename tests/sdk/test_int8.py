# SPDX-License-Identifier: Apache-2.0
"""[models.quantize] dtype = "int8" on real exports: the QDQ model onnxruntime's quantize_static
makes packs, runs through the host SDK's edgepack-run and matches the host int8 reference
(onnxruntime on the same QDQ graph).

Group-1 convolutions run as QLinearConv on the int8 kernel, element-wise chains between QDQ
nodes (YOLO's SiLU) as one table lookup each, the rest in float32 between QuantizeLinear /
DequantizeLinear (docs/quantization.md). onnxruntime with its graph
optimisations off runs the same graph op by op, so the match is tight there (cosine >= 0.9999);
with its optimisations on it fuses further (e.g. Add), rounding differently now and then
(cosine >= 0.999 is asserted).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from graph_runner import run_device
from onnx import TensorProto, helper, numpy_helper
from sdk_host import SdkBuild
from test_real_models import runner_outputs

from edgepack.artifact.pack import pack_project
from edgepack.lower import device_graph as dg
from edgepack.lower.lowering import lower
from edgepack.model.stages import build_stage_plan
from edgepack.spec.loader import load_spec
from real_models import REAL_MODELS
from real_projects import write_project

Array = np.ndarray[Any, Any]
CALIBRATION_SAMPLES = 4


def _ort(model: Any, feeds: dict[str, Array], optimise: bool) -> list[Array]:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    if not optimise:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), opts,
                                   providers=["CPUExecutionProvider"])
    return [np.asarray(v) for v in session.run(None, feeds)]


def _cosine(a: Array, b: Array) -> float:
    a64, b64 = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(a64 @ b64 / (np.linalg.norm(a64) * np.linalg.norm(b64)))


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "yolov8n"])
def test_int8_model_through_the_runner(sdk_host: SdkBuild, tmp_path: Path, name: str) -> None:
    spec = next(m for m in REAL_MODELS if m.name == name)
    (input_name, shape), = spec.inputs.items()
    calib = tmp_path / "project" / "calib"
    calib.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in range(CALIBRATION_SAMPLES):
        np.save(calib / f"{input_name}_{i}.npy", rng.standard_normal(shape).astype(np.float32))
    root = write_project(tmp_path / "project", name, """\
  [models.quantize]
  dtype = "int8"
  calibration = "calib"
  min_cosine = 0.9
""")
    epk = tmp_path / "model.epk"
    packed = pack_project(root, epk)
    q = packed.manifest["models"][0]["quantization"]
    assert q["dtype"] == "int8" and len(q["tensors"]) > 20

    plan = build_stage_plan(load_spec(root))
    qdq = plan.models[0].onnx
    assert sum(n.op_type == "QuantizeLinear" for n in qdq.graph.node) >= 10
    if name != "yolov8n":  # every convolution fused, MobileNetV2's 17 depthwise ones too, and
        # the classifier (Gemm -> 1x1 QLinearConv)
        assert not [n.name for n in qdq.graph.node if n.op_type in ("Conv", "Gemm")]
    feeds = {input_name: np.random.default_rng(0).standard_normal(shape).astype(np.float32)}
    got = runner_outputs(sdk_host, root, epk, feeds, tmp_path)
    emulated = dict(zip(spec.outputs, _ort(qdq, feeds, optimise=False), strict=True))
    int8 = dict(zip(spec.outputs, _ort(qdq, feeds, optimise=True), strict=True))
    for out, ref in emulated.items():
        assert got[out].shape == ref.shape and got[out].dtype == ref.dtype
        # 1-step requantisation differences at .5 boundaries compound over MobileNetV2's 52
        # convolutions: 0.99987 (benchmarks/results/int8.json, also before its depthwise fused)
        assert _cosine(got[out], ref) >= (0.9995 if name == "mobilenet_v2" else 0.9999), out
        assert _cosine(got[out], int8[out]) >= 0.999, out


# --- element-wise chains between QDQ nodes as table lookups (lower/int8_tables.py) ----------

def _silu_qdq(x_type: int, y_type: int, *, extra_reader: bool = False,
              vector_const: bool = False) -> onnx.ModelProto:
    """What quantize_static makes of SiLU: x -> Q -> DQ -> Sigmoid -> Q -> DQ -> Mul(DQ(x)) ->
    Q -> DQ -> y, then * 0.5 (a scalar, or a per-channel constant: not a table)."""
    np_x = np.uint8 if x_type == TensorProto.UINT8 else np.int8
    np_y = np.uint8 if y_type == TensorProto.UINT8 else np.int8
    half = np.full((1, 8, 1, 1), 0.5, np.float32) if vector_const else np.array(0.5, np.float32)
    inits = [numpy_helper.from_array(np.array(0.05, np.float32), "sx"),
             numpy_helper.from_array(np.array(128 if np_x is np.uint8 else -3, np_x), "zx"),
             numpy_helper.from_array(np.array(1 / 255, np.float32), "ss"),
             numpy_helper.from_array(np.array(0, np.uint8), "zs"),
             numpy_helper.from_array(np.array(0.02, np.float32), "sy"),
             numpy_helper.from_array(np.array(3 if np_y is np.uint8 else -100, np_y), "zy"),
             numpy_helper.from_array(half, "half")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "sx", "zx"], ["xd1"]),
             helper.make_node("DequantizeLinear", ["xq", "sx", "zx"], ["xd2"]),
             helper.make_node("Sigmoid", ["xd1"], ["s"]),
             helper.make_node("QuantizeLinear", ["s", "ss", "zs"], ["sq"]),
             helper.make_node("DequantizeLinear", ["sq", "ss", "zs"], ["sd"]),
             helper.make_node("Mul", ["xd2", "sd"], ["m"]),
             helper.make_node("Mul", ["m", "half"], ["m2"]),
             helper.make_node("QuantizeLinear", ["m2", "sy", "zy"], ["mq"]),
             helper.make_node("DequantizeLinear", ["mq", "sy", "zy"], ["y"])]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 16, 16])]
    if extra_reader:  # the sigmoid's bytes are read outside the chain
        nodes.append(helper.make_node("DequantizeLinear", ["sq", "ss", "zs"], ["s_out"]))
        outputs.append(helper.make_tensor_value_info("s_out", TensorProto.FLOAT, [1, 8, 16, 16]))
    graph = helper.make_graph(
        nodes, "silu_qdq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 16, 16])],
        outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _device_ops(model: onnx.ModelProto) -> list[str]:
    return [n.op_type for n in dg.parse(lower(model)).nodes]


@pytest.mark.parametrize("x_type", [TensorProto.UINT8, TensorProto.INT8])
@pytest.mark.parametrize("y_type", [TensorProto.UINT8, TensorProto.INT8])
def test_qdq_chain_becomes_one_table(sdk_host: SdkBuild, x_type: int, y_type: int) -> None:
    """The whole SiLU chain (two Q/DQ round trips, Sigmoid, two Muls) is one QuantizeLinear
    with a table; its bytes equal onnxruntime running the QDQ graph op by op, exactly, and
    with its optimisations on within one step."""
    model = _silu_qdq(x_type, y_type)
    assert _device_ops(model) == ["QuantizeLinear", "QuantizeLinear", "DequantizeLinear"]
    rng = np.random.default_rng(0)
    # Inputs over the whole byte range of x, both saturation ends included.
    feeds = {"x": (rng.standard_normal((1, 8, 16, 16)) * 4).astype(np.float32)}
    feeds["x"].flat[:4] = [-1000.0, 1000.0, 0.0, -0.0]
    got = run_device(sdk_host.build, model, feeds)["y"]
    (emulated,) = _ort(model, feeds, optimise=False)
    (fused,) = _ort(model, feeds, optimise=True)
    np.testing.assert_array_equal(got, emulated)
    assert np.abs(got - fused).max() <= 0.02 + 1e-6  # one step of y
    assert len(np.unique(got)) > 50  # not a degenerate table


def test_qdq_chain_with_outside_readers_stays(sdk_host: SdkBuild) -> None:
    """When the sigmoid's bytes are also read elsewhere, the product reads two byte tensors
    and stays float while the sigmoid alone becomes a table; a per-channel constant is no
    function of one byte either."""
    model = _silu_qdq(TensorProto.UINT8, TensorProto.UINT8, extra_reader=True)
    ops = _device_ops(model)
    assert "Sigmoid" not in ops and ops.count("Mul") == 2
    feeds = {"x": (np.random.default_rng(1).standard_normal((1, 8, 16, 16)) * 4)
             .astype(np.float32)}
    got = run_device(sdk_host.build, model, feeds)
    for name, ref in zip(["y", "s_out"], _ort(model, feeds, optimise=False), strict=True):
        np.testing.assert_array_equal(got[name], ref)
    per_channel = _silu_qdq(TensorProto.UINT8, TensorProto.UINT8, vector_const=True)
    assert "Sigmoid" not in _device_ops(per_channel)  # sigmoid alone still is one
    assert "Mul" in _device_ops(per_channel)


def _activation_qdq(kind: str) -> onnx.ModelProto:
    """x -> Q -> DQ -> <kind> (scalar-constant operands) -> Q -> DQ: one table each."""
    inits = [numpy_helper.from_array(np.array(0.04, np.float32), "sx"),
             numpy_helper.from_array(np.array(120, np.uint8), "zx"),
             numpy_helper.from_array(np.array(0.025, np.float32), "sy"),
             numpy_helper.from_array(np.array(0, np.uint8), "zy"),
             numpy_helper.from_array(np.array(0.0, np.float32), "lo"),
             numpy_helper.from_array(np.array(6.0, np.float32), "hi"),
             numpy_helper.from_array(np.array([[[[1.5]]]], np.float32), "k")]
    body = {
        "Clip": [helper.make_node("Clip", ["xd", "lo", "hi"], ["a"])],  # Relu6
        "HardSwish": [helper.make_node("HardSwish", ["xd"], ["a"])],
        "LeakyRelu": [helper.make_node("LeakyRelu", ["xd"], ["a"], alpha=0.1)],
        "Mul,Sub,Tanh": [helper.make_node("Mul", ["xd", "k"], ["m"]),  # a rank-4 scalar
                         helper.make_node("Sub", ["m", "hi"], ["s"]),
                         helper.make_node("Tanh", ["s"], ["a"])],
    }[kind]
    nodes = [helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "sx", "zx"], ["xd"]), *body,
             helper.make_node("QuantizeLinear", ["a", "sy", "zy"], ["aq"]),
             helper.make_node("DequantizeLinear", ["aq", "sy", "zy"], ["y"])]
    graph = helper.make_graph(
        nodes, "act_qdq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 9, 7])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 9, 7])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("kind", ["Clip", "HardSwish", "LeakyRelu", "Mul,Sub,Tanh"])
def test_activation_chains_become_tables(sdk_host: SdkBuild, kind: str) -> None:
    model = _activation_qdq(kind)
    assert _device_ops(model) == ["QuantizeLinear", "QuantizeLinear", "DequantizeLinear"]
    feeds = {"x": (np.random.default_rng(2).standard_normal((1, 4, 9, 7)) * 4)
             .astype(np.float32)}
    got = run_device(sdk_host.build, model, feeds)["y"]
    np.testing.assert_array_equal(got, _ort(model, feeds, optimise=False)[0])


def _residual_qdq(relu: bool) -> onnx.ModelProto:
    """Two residual Adds in a row, as quantize_static leaves them: a, b -> Q -> DQ -> Add
    [-> Relu] -> Q -> DQ -> Add(DQ(c)) -> Q -> DQ -> y (each Add one 65536-entry table)."""
    shape = [1, 3, 5, 7]
    inits = [numpy_helper.from_array(np.array(s, np.float32), f"s{i}")
             for i, s in enumerate([0.03, 0.05, 0.04, 0.06, 0.07])]
    inits += [numpy_helper.from_array(np.array(z, np.uint8), f"z{i}")
              for i, z in enumerate([128, 100, 0 if relu else 90, 140, 110])]
    nodes = []
    for i, name in enumerate(["a", "b", "c"]):
        s, z = ("s4", "z4") if name == "c" else (f"s{i}", f"z{i}")
        nodes += [helper.make_node("QuantizeLinear", [name, s, z], [f"{name}q"]),
                  helper.make_node("DequantizeLinear", [f"{name}q", s, z], [f"{name}d"])]
    nodes.append(helper.make_node("Add", ["ad", "bd"], ["sum"]))
    if relu:
        nodes.append(helper.make_node("Relu", ["sum"], ["sum_r"]))
    nodes += [helper.make_node("QuantizeLinear", ["sum_r" if relu else "sum", "s2", "z2"],
                               ["sq"]),
              helper.make_node("DequantizeLinear", ["sq", "s2", "z2"], ["sd"]),
              helper.make_node("Add", ["sd", "cd"], ["sum2"]),
              helper.make_node("QuantizeLinear", ["sum2", "s3", "z3"], ["yq"]),
              helper.make_node("DequantizeLinear", ["yq", "s3", "z3"], ["y"])]
    graph = helper.make_graph(
        nodes, "residual_qdq",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n in "abc"],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("relu", [False, True])
def test_residual_adds_become_pair_tables(sdk_host: SdkBuild, relu: bool) -> None:
    """DQ(a) + DQ(b) [-> Relu] -> Q reads two byte tensors: one lookup in a 65536-entry table
    (lower/int8_tables.py), bytes equal to onnxruntime running the QDQ graph op by op; a second
    Add reading the first one's bytes is its own table, not merged into a three-input chain."""
    model = _residual_qdq(relu)
    blob = dg.parse(lower(model))
    assert [n.op_type for n in blob.nodes] == ["QuantizeLinear"] * 5 + ["DequantizeLinear"]
    tables = [n for n in blob.nodes if len(n.inputs) == 5]
    assert len(tables) == 2
    rng = np.random.default_rng(3)
    feeds = {n: (rng.standard_normal((1, 3, 5, 7)) * 5).astype(np.float32) for n in "abc"}
    got = run_device(sdk_host.build, model, feeds)["y"]
    np.testing.assert_array_equal(got, _ort(model, feeds, optimise=False)[0])

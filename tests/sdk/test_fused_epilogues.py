# SPDX-License-Identifier: Apache-2.0
"""Fused epilogues: lowering folds SiLU (``Mul(y, Sigmoid(y))``, as torch exports it), GELU
(torch's Erf chain) and HardSigmoid into the Conv/Gemm/MatMul that produces ``y``, and a linear
layer's bias Add into its MatMul; the runtime's fused result matches onnxruntime on the unfused
graph, for the depthwise (any kernel size), pointwise, im2col and
Gemm paths; a ``y`` with another reader is left alone. Relu after a float32 Add (residuals)
becomes the Add's activation, with and without broadcasting. A LayerNorm across channels
exported between two Transposes (timm's LayerNorm2d) becomes one channels-first LayerNorm."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from graph_runner import run_device, run_ort
from onnx import TensorProto, helper, numpy_helper
from sdk_host import SdkBuild

from edgepack.lower import device_graph as dg
from edgepack.lower.lowering import lower

RNG = np.random.default_rng(12)


def _model(nodes: list[onnx.NodeProto], x_shape: list[int], outputs: list[str],
           inits: dict[str, np.ndarray]) -> onnx.ModelProto:
    g = helper.make_graph(
        nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in outputs],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return onnx.shape_inference.infer_shapes(m)


def _conv(c_in: int, c_out: int, k: int, group: int, stride: int, act: str) -> onnx.ModelProto:
    w = (RNG.standard_normal((c_out, c_in // group, k, k)) / np.sqrt(k * k)).astype(np.float32)
    b = RNG.standard_normal(c_out).astype(np.float32) * 0.1
    conv = helper.make_node("Conv", ["x", "w", "b"], ["y"], group=group, strides=[stride] * 2,
                            pads=[k // 2] * 4)
    consts: dict[str, np.ndarray] = {}
    if act == "silu":
        tail = [helper.make_node("Sigmoid", ["y"], ["s"]), helper.make_node("Mul", ["s", "y"],
                                                                              ["out"])]
    elif act == "gelu":
        tail, consts = _gelu("y")
    else:
        tail = [helper.make_node("HardSigmoid", ["y"], ["out"], alpha=0.3, beta=0.4)]
    return _model([conv, *tail], [1, c_in, 17, 23], ["out"], {"w": w, "b": b, **consts})


def _gelu(y: str) -> tuple[list[onnx.NodeProto], dict[str, np.ndarray]]:
    """torch.nn.GELU() on y as exported (y * (erf(y / sqrt 2) + 1) * 0.5) and its constants."""
    return ([helper.make_node("Div", [y, "c_sqrt2"], ["d"]), helper.make_node("Erf", ["d"], ["e"]),
             helper.make_node("Add", ["e", "c_one"], ["a"]), helper.make_node("Mul", [y, "a"],
                                                                              ["m"]),
             helper.make_node("Mul", ["m", "c_half"], ["out"])],
            {"c_sqrt2": np.array(np.sqrt(2.0), np.float32), "c_one": np.array(1.0, np.float32),
             "c_half": np.array(0.5, np.float32)})


ACT_NAME = {"silu": "Silu", "gelu": "Gelu", "hardsigmoid": "HardSigmoid"}


@pytest.mark.parametrize(("c_in", "c_out", "k", "group", "stride"), [
    (8, 8, 5, 8, 2),    # depthwise 5x5 stride 2 (kDepthwise)
    (8, 8, 3, 8, 1),    # depthwise 3x3 (its own row kernel)
    (8, 16, 1, 1, 1),   # pointwise (GEMM on the input)
    (4, 6, 3, 2, 1),    # grouped, im2col
    (8, 16, 3, 1, 1),   # 3x3 by Winograd
    (3, 16, 3, 1, 2),   # a stem: output channels in vectors (kDirectOc)
])
@pytest.mark.parametrize("act", ["silu", "hardsigmoid", "gelu"])
def test_fused_conv_matches_onnxruntime(sdk_host: SdkBuild, c_in: int, c_out: int, k: int,
                                        group: int, stride: int, act: str) -> None:
    model = _conv(c_in, c_out, k, group, stride, act)
    g = dg.parse(lower(model))
    assert [n.op_type for n in g.nodes] == ["Conv"]
    conv = g.nodes[0]
    assert conv.attrs["activation"].value == ACT_NAME[act]
    if act == "hardsigmoid":
        assert conv.attrs["activation_alpha"].value == pytest.approx(0.3)
        assert conv.attrs["activation_beta"].value == pytest.approx(0.4)
    x = RNG.standard_normal((1, c_in, 17, 23)).astype(np.float32) * 3
    # Winograd F(4x4, 3x3) rounds differently from a direct sum (its transforms add and scale the
    # 36 products): ~5e-5 on these 72-term sums of values up to ~10.
    tol = 2e-4 if (k, group, stride, c_in) == (3, 1, 1, 8) else 1e-5
    for threads in (1, 2):
        got = run_device(sdk_host.build, model, {"x": x}, threads=threads)["out"]
        np.testing.assert_allclose(got, run_ort(model, {"x": x})["out"], rtol=tol, atol=tol)


def test_fused_gemm_silu(sdk_host: SdkBuild) -> None:
    w = RNG.standard_normal((24, 10)).astype(np.float32)
    nodes = [helper.make_node("Gemm", ["x", "w"], ["y"]), helper.make_node("Sigmoid", ["y"], ["s"]),
             helper.make_node("Mul", ["y", "s"], ["out"])]
    model = _model(nodes, [3, 24], ["out"], {"w": w})
    assert [n.op_type for n in dg.parse(lower(model)).nodes] == ["Gemm"]
    x = RNG.standard_normal((3, 24)).astype(np.float32)
    np.testing.assert_allclose(run_device(sdk_host.build, model, {"x": x})["out"],
                               run_ort(model, {"x": x})["out"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("rows", [1, 197])  # one row and many
@pytest.mark.parametrize("bias_shape", [None, [72], [1, 1, 72]])
def test_fused_matmul_bias_gelu(sdk_host: SdkBuild, rows: int,
                                bias_shape: list[int] | None) -> None:
    """A transformer MLP's first layer: MatMul by constant weights, the bias Add, then torch's
    GELU chain, becomes one MatMul (bias as its third input, activation Gelu); tails and zero
    included."""
    w = (RNG.standard_normal((48, 72)) / np.sqrt(48)).astype(np.float32)
    tail, consts = _gelu("y")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"]), *tail]
    if bias_shape is not None:
        consts["bias"] = RNG.standard_normal(bias_shape).astype(np.float32)
        nodes = [helper.make_node("MatMul", ["x", "w"], ["p"]),
                 helper.make_node("Add", ["bias", "p"], ["y"]), *tail]
    model = _model(nodes, [1, rows, 48], ["out"], {"w": w, **consts})
    g = dg.parse(lower(model))
    assert [n.op_type for n in g.nodes] == ["MatMul"]
    assert len(g.nodes[0].inputs) == (2 if bias_shape is None else 3)
    assert g.nodes[0].attrs["activation"].value == "Gelu"
    x = RNG.standard_normal((1, rows, 48)).astype(np.float32) * 3
    x[0, 0, :4] = [0.0, 30.0, -30.0, 1e-6]
    for threads in (1, 2):
        got = run_device(sdk_host.build, model, {"x": x}, threads=threads)["out"]
        np.testing.assert_allclose(got, run_ort(model, {"x": x})["out"], rtol=1e-5, atol=2e-6)


def test_bias_add_not_fused_into_matmul() -> None:
    """Not a bias of the last axis, a product with another reader, a non-constant addend."""
    w = RNG.standard_normal((6, 4)).astype(np.float32)
    mm = helper.make_node("MatMul", ["x", "w"], ["p"])
    cases = [
        ([mm, helper.make_node("Add", ["p", "c"], ["out"])],
         {"c": RNG.standard_normal((3, 1)).astype(np.float32)}),  # along the rows
        ([mm, helper.make_node("Add", ["p", "c"], ["q"]), helper.make_node("Mul", ["p", "q"],
                                                                            ["out"])],
         {"c": RNG.standard_normal(4).astype(np.float32)}),  # p read twice
        ([mm, helper.make_node("Add", ["p", "p"], ["out"])], {}),
    ]
    for nodes, consts in cases:
        g = dg.parse(lower(_model(nodes, [2, 3, 6], ["out"], {"w": w, **consts})))
        assert g.nodes[0].op_type == "MatMul" and len(g.nodes[0].inputs) == 2


def test_silu_not_fused_when_the_conv_output_has_another_reader() -> None:
    w = RNG.standard_normal((4, 4, 1, 1)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"]), helper.make_node("Sigmoid", ["y"], ["s"]),
             helper.make_node("Mul", ["y", "s"], ["m"]), helper.make_node("Add", ["m", "y"],
                                                                          ["out"])]
    g = dg.parse(lower(_model(nodes, [1, 4, 5, 5], ["out"], {"w": w})))
    assert [n.op_type for n in g.nodes] == ["Conv", "Sigmoid", "Mul", "Add"]
    assert "activation" not in g.nodes[0].attrs


def test_sigmoid_times_other_tensor_is_not_silu() -> None:
    w = RNG.standard_normal((4, 4, 1, 1)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"]), helper.make_node("Sigmoid", ["y"], ["s"]),
             helper.make_node("Mul", ["x", "s"], ["out"])]  # x * sigmoid(conv(x)): a gate
    g = dg.parse(lower(_model(nodes, [1, 4, 5, 5], ["out"], {"w": w})))
    assert [n.op_type for n in g.nodes] == ["Conv", "Sigmoid", "Mul"]


@pytest.mark.parametrize("b_shape", [[1, 6, 5, 7], [1, 6, 1, 1], [1]])
def test_add_relu_fused_matches_onnxruntime(sdk_host: SdkBuild, b_shape: list[int]) -> None:
    b = RNG.standard_normal(b_shape).astype(np.float32)
    m = _model([helper.make_node("Add", ["x", "b"], ["a"]),
                helper.make_node("Relu", ["a"], ["out"])], [1, 6, 5, 7], ["out"], {"b": b})
    g = dg.parse(lower(m))
    assert [n.op_type for n in g.nodes] == ["Add"]
    assert g.nodes[0].attrs["activation"].value == "Relu"
    feeds = {"x": RNG.standard_normal((1, 6, 5, 7)).astype(np.float32)}
    got, want = run_device(sdk_host.build, m, feeds)["out"], run_ort(m, feeds)["out"]
    assert (want == 0).any() and (want > 0).any()
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_add_relu_not_fused_when_the_sum_has_another_reader_or_is_integer() -> None:
    b = RNG.standard_normal([1, 6, 5, 7]).astype(np.float32)
    m = _model([helper.make_node("Add", ["x", "b"], ["a"]),
                helper.make_node("Relu", ["a"], ["r"]),
                helper.make_node("Mul", ["a", "r"], ["out"])], [1, 6, 5, 7], ["out"], {"b": b})
    assert [n.op_type for n in dg.parse(lower(m)).nodes] == ["Add", "Relu", "Mul"]
    g = helper.make_graph(
        [helper.make_node("Add", ["x", "x"], ["a"]), helper.make_node("Relu", ["a"], ["out"])],
        "t", [helper.make_tensor_value_info("x", TensorProto.INT32, [4])],
        [helper.make_tensor_value_info("out", TensorProto.INT32, [4])])
    im = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    im.ir_version = 8
    assert [n.op_type for n in dg.parse(lower(im)).nodes] == ["Add", "Relu"]


def _layernorm_2d(shape: list[int], bias: bool, reader: bool = False) -> onnx.ModelProto:
    """timm's LayerNorm2d as exported: channels last, LayerNorm over the last axis, back."""
    rank, c = len(shape), shape[1]
    inits = {"s": (1 + 0.3 * RNG.standard_normal(c)).astype(np.float32)}
    if bias:
        inits["b"] = (0.2 * RNG.standard_normal(c)).astype(np.float32)
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[0, *range(2, rank), 1]),
             helper.make_node("LayerNormalization", ["t", "s", *(["b"] if bias else [])], ["n"],
                              axis=-1, epsilon=1e-6),
             helper.make_node("Transpose", ["n"], ["out"], perm=[0, rank - 1, *range(1, rank - 1)])]
    outputs = ["out"]
    if reader:  # the channels-last tensor is read twice: nothing is fused
        nodes.append(helper.make_node("Relu", ["t"], ["r"]))
        outputs.append("r")
    return _model(nodes, shape, outputs, inits)


@pytest.mark.parametrize(("shape", "bias"), [
    ([1, 40, 14, 14], True),   # ConvNeXt-atto's stages (196 positions: one piece and a part)
    ([2, 24, 5, 7], False),    # batch 2, no B
    ([1, 320, 1, 1], True),    # the head's norm after the pooling
    ([1, 16, 300], True),      # rank 3
])
def test_channel_layernorm_fused_matches_onnxruntime(sdk_host: SdkBuild, shape: list[int],
                                                     bias: bool) -> None:
    m = _layernorm_2d(shape, bias)
    g = dg.parse(lower(m))
    assert [n.op_type for n in g.nodes] == ["LayerNormalization"]
    assert g.nodes[0].attrs["channels_first"].value == 1
    feeds = {"x": (3.0 + 2.0 * RNG.standard_normal(shape)).astype(np.float32)}
    for threads in (1, 3):
        got = run_device(sdk_host.build, m, feeds, threads=threads)["out"]
        np.testing.assert_allclose(got, run_ort(m, feeds)["out"], rtol=1e-4, atol=1e-4)


def test_channel_layernorm_not_fused_when_a_transposed_tensor_has_another_reader() -> None:
    m = _layernorm_2d([1, 8, 4, 4], True, reader=True)
    assert [n.op_type for n in dg.parse(lower(m)).nodes] == [
        "Transpose", "LayerNormalization", "Transpose", "Relu"]

# SPDX-License-Identifier: Apache-2.0
"""Small graphs that reproduce what exporters write into real models: Shape -> Gather -> Div ->
Slice/Reshape chains over statically shaped tensors (YOLOv8's Detect head, ViT attention,
ShuffleNet's channel shuffle), Range-built anchor grids, and truly data-dependent shapes."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _i64(name: str, values: list[int] | int) -> onnx.TensorProto:
    return numpy_helper.from_array(np.array(values, np.int64), name)


def _f32(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(array.astype(np.float32), name)


def model(nodes: list[onnx.NodeProto], inputs: list[onnx.ValueInfoProto],
          outputs: list[onnx.ValueInfoProto], inits: list[onnx.TensorProto],
          opset: int = 17, name: str = "exported") -> onnx.ModelProto:
    graph = helper.make_graph(nodes, name, inputs, outputs, inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)
    onnx.checker.check_model(m)
    return m


def _dim(x: str, axis: int, tag: str) -> list[onnx.NodeProto]:
    """``{tag}`` = x.shape[axis] as a 0-d int64, the way torch writes ``x.shape[axis]``."""
    return [
        helper.make_node("Shape", [x], [f"{tag}_shape"], name=f"/{tag}/Shape"),
        helper.make_node("Gather", [f"{tag}_shape", f"{tag}_idx"], [tag], axis=0,
                         name=f"/{tag}/Gather"),
    ]


def yolov8_head(seed: int = 0, channels: int = 16, nc: int = 4, size: int = 8) -> onnx.ModelProto:
    """YOLOv8 Detect: conv -> view(b, no, -1) with b from Shape, then box/cls split by a Slice
    whose end is computed as ``shape[1] // 2`` (Div: outside onnx's data propagation), a DFL
    softmax over a Reshape built from Shape/Gather/Concat, and a Range-built anchor row."""
    rng = np.random.default_rng(seed)
    no = 2 * nc
    w = rng.normal(0, 0.3, (no, channels, 1, 1))
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["feat"], name="/model.22/cv/Conv"),
        *_dim("feat", 0, "b"),
        helper.make_node("Unsqueeze", ["b", "axis0"], ["b1"], name="/model.22/Unsqueeze"),
        helper.make_node("Concat", ["b1", "no_rest"], ["view"], axis=0,
                         name="/model.22/Concat"),
        helper.make_node("Reshape", ["feat", "view"], ["flat"], name="/model.22/Reshape"),
        *_dim("flat", 1, "c"),
        helper.make_node("Div", ["c", "two"], ["half"], name="/model.22/Div"),
        helper.make_node("Unsqueeze", ["half", "axis0"], ["half1"], name="/model.22/Unsqueeze_1"),
        helper.make_node("Slice", ["flat", "zero1", "half1", "one1"], ["box"],
                         name="/model.22/Slice"),
        helper.make_node("Slice", ["flat", "half1", "big1", "one1"], ["cls"],
                         name="/model.22/Slice_1"),
        helper.make_node("Sigmoid", ["cls"], ["scores"], name="/model.22/Sigmoid"),
        # anchors: Range(0, shape[-1]) + 0.5, as make_anchors writes it
        *_dim("flat", 2, "a"),
        helper.make_node("Cast", ["a"], ["a_f"], to=TensorProto.FLOAT, name="/model.22/Cast"),
        helper.make_node("Range", ["zero_f", "a_f", "one_f"], ["idx"], name="/model.22/Range"),
        helper.make_node("Add", ["idx", "half_f"], ["anchor"], name="/model.22/Add"),
        helper.make_node("Add", ["box", "anchor"], ["box_a"], name="/model.22/Add_1"),
        helper.make_node("Concat", ["box_a", "scores"], ["y"], axis=1, name="/model.22/Concat_1"),
    ]
    inits = [
        _f32("w", w), _i64("b_idx", 0), _i64("c_idx", 1), _i64("a_idx", 2),
        _i64("axis0", [0]), _i64("no_rest", [no, -1]), _i64("two", 2), _i64("zero1", [0]),
        _i64("one1", [1]), _i64("big1", [1 << 62]),
        _f32("zero_f", np.array(0.0)), _f32("one_f", np.array(1.0)), _f32("half_f", np.array(0.5)),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", channels, size, size])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", no, "anchors"])
    return model(nodes, [x], [y], inits, name="yolov8_head")


def vit_attention_reshape(heads: int = 2, tokens: int = 5, dim: int = 8) -> onnx.ModelProto:
    """ViT: q.reshape(B, N, heads, C // heads) with B, N, C read from the tensor's Shape."""
    nodes = [
        *_dim("x", 0, "b"), *_dim("x", 1, "n"), *_dim("x", 2, "c"),
        helper.make_node("Div", ["c", "heads"], ["hd"], name="/attn/Div"),
        *[helper.make_node("Unsqueeze", [t, "axis0"], [f"{t}1"], name=f"/attn/Unsqueeze_{t}")
          for t in ("b", "n", "hd")],
        helper.make_node("Concat", ["b1", "n1", "heads1", "hd1"], ["shape"], axis=0,
                         name="/attn/Concat"),
        helper.make_node("Reshape", ["x", "shape"], ["q"], name="/attn/Reshape"),
        helper.make_node("Transpose", ["q"], ["qt"], perm=[0, 2, 1, 3], name="/attn/Transpose"),
        helper.make_node("Softmax", ["qt"], ["y"], axis=-1, name="/attn/Softmax"),
    ]
    inits = [_i64("b_idx", 0), _i64("n_idx", 1), _i64("c_idx", 2), _i64("heads", heads),
             _i64("heads1", [heads]), _i64("axis0", [0])]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", tokens, dim])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", heads, tokens, "hd"])
    return model(nodes, [x], [y], inits, name="vit_attention")


def channel_shuffle(groups: int = 2, channels: int = 8, size: int = 4) -> onnx.ModelProto:
    """ShuffleNetV2: x.view(b, g, c // g, h, w).transpose(1, 2).reshape(b, -1, h, w)."""
    nodes = [
        *_dim("x", 0, "b"), *_dim("x", 1, "c"), *_dim("x", 2, "h"), *_dim("x", 3, "w"),
        helper.make_node("Div", ["c", "g"], ["cg"], name="/shuffle/Div"),
        *[helper.make_node("Unsqueeze", [t, "axis0"], [f"{t}1"], name=f"/shuffle/Unsqueeze_{t}")
          for t in ("b", "cg", "h", "w")],
        helper.make_node("Concat", ["b1", "g1", "cg1", "h1", "w1"], ["s5"], axis=0,
                         name="/shuffle/Concat"),
        helper.make_node("Reshape", ["x", "s5"], ["v"], name="/shuffle/Reshape"),
        helper.make_node("Transpose", ["v"], ["t"], perm=[0, 2, 1, 3, 4],
                         name="/shuffle/Transpose"),
        helper.make_node("Concat", ["b1", "minus1", "h1", "w1"], ["s4"], axis=0,
                         name="/shuffle/Concat_1"),
        helper.make_node("Reshape", ["t", "s4"], ["y"], name="/shuffle/Reshape_1"),
    ]
    inits = [_i64("b_idx", 0), _i64("c_idx", 1), _i64("h_idx", 2), _i64("w_idx", 3),
             _i64("g", groups), _i64("g1", [groups]), _i64("minus1", [-1]), _i64("axis0", [0])]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", channels, size, size])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", channels, size, size])
    return model(nodes, [x], [y], inits, name="channel_shuffle")


def nonzero_gather(size: int = 6) -> onnx.ModelProto:
    """A shape that depends on the data: NonZero -> Transpose -> GatherND -> Relu."""
    nodes = [
        helper.make_node("Greater", ["x", "thr"], ["mask"], name="/post/Greater"),
        helper.make_node("NonZero", ["mask"], ["nz"], name="/post/NonZero"),
        helper.make_node("Transpose", ["nz"], ["idx"], perm=[1, 0], name="/post/Transpose"),
        helper.make_node("GatherND", ["x", "idx"], ["picked"], name="/post/GatherND"),
        helper.make_node("Relu", ["picked"], ["y"], name="/post/Relu"),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, size])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["K"])
    return model(nodes, [x], [y], [_f32("thr", np.array(0.0))], name="nonzero")


def value_dependent_reshape() -> onnx.ModelProto:
    """A Reshape whose target shape is computed from the input's values (ArgMax -> Cast)."""
    nodes = [
        helper.make_node("ArgMax", ["x"], ["k"], axis=1, keepdims=0, name="/pick/ArgMax"),
        helper.make_node("Add", ["k", "one1"], ["k1"], name="/pick/Add"),
        helper.make_node("Concat", ["k1", "minus1"], ["shape"], axis=0, name="/pick/Concat"),
        helper.make_node("Reshape", ["x", "shape"], ["y"], name="/pick/Reshape"),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["R", "C"])
    return model(nodes, [x], [y], [_i64("one1", [1]), _i64("minus1", [-1])], name="valuedep")


def opset18_signatures(opset: int = 18) -> onnx.ModelProto:
    """The ops whose signature changed after opset 17, as torch's dynamo exporter writes them:
    ReduceMean/ReduceMax axes as inputs, Split by num_outputs (uneven), Pad and Resize with
    axes, behind a Shape chain so the converter must fold before it adapts."""
    nodes = [
        helper.make_node("ReduceMean", ["x", "hw"], ["mean"], keepdims=1, name="/mean"),
        helper.make_node("Split", ["x"], ["s0", "s1"], axis=1, num_outputs=2, name="/split"),
        helper.make_node("Pad", ["s1", "pads", "", "hw"], ["padded"], mode="reflect",
                         name="/pad"),
        *_dim("s0", 2, "h"),
        helper.make_node("Mul", ["h", "two"], ["h2"], name="/h2"),
        helper.make_node("Unsqueeze", ["h2", "axis0"], ["h2_1"], name="/h2_1"),
        helper.make_node("Concat", ["h2_1", "h2_1"], ["size"], axis=0, name="/size"),
        helper.make_node("Resize", ["s0", "", "", "size"], ["up"], axes=[2, 3], mode="nearest",
                         name="/resize"),
        helper.make_node("ReduceMax", ["padded", "ch"], ["peak"], keepdims=0, name="/peak"),
        helper.make_node("ReduceMean", ["x", "none"], ["all"], keepdims=0,
                         noop_with_empty_axes=0, name="/all"),
    ]
    inits = [_i64("hw", [2, 3]), _i64("pads", [1, 2, 1, 2]), _i64("ch", [1]),
             _i64("two", 2), _i64("axis0", [0]), _i64("h_idx", 2),
             numpy_helper.from_array(np.zeros(0, np.int64), "none")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 5, 6, 6])
    out_shapes: tuple[tuple[str, list[str | int]], ...] = (
        ("mean", ["batch", 5, 1, 1]), ("up", ["batch", 3, 12, 12]), ("peak", ["batch", 8, 10]),
        ("all", []))
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n, shape in out_shapes]
    graph = helper.make_graph(nodes, "opset18", [x], outs, inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=10)
    return m


def function_ops(opset: int) -> onnx.ModelProto:
    """Ops that opset 17 lacks (each has an ONNX function body): Mish (18), Gelu (20),
    GroupNormalization (21 semantics: per-channel scale and bias)."""
    rng = np.random.default_rng(3)
    nodes = [helper.make_node("Mish", ["x"], ["mish"], name="/mish")]
    inits: list[onnx.TensorProto] = []
    if opset >= 20:
        nodes.append(helper.make_node("Gelu", ["mish"], ["gelu"], name="/gelu"))
        nodes.append(helper.make_node("Gelu", ["x"], ["gelu_tanh"], approximate="tanh",
                                      name="/gelu_tanh"))
    if opset >= 21:
        nodes.append(helper.make_node("GroupNormalization", ["x", "scale", "bias"], ["gn"],
                                      num_groups=2, epsilon=1e-5, name="/gn"))
        inits += [_f32("scale", rng.normal(1, 0.1, 4)), _f32("bias", rng.normal(0, 0.1, 4))]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 3, 3])
    outs = [helper.make_tensor_value_info(n.output[0], TensorProto.FLOAT, [1, 4, 3, 3])
            for n in nodes]
    graph = helper.make_graph(nodes, "functions", [x], outs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                             ir_version=10)

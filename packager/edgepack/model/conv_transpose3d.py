# SPDX-License-Identifier: Apache-2.0
"""3-D ConvTranspose as 2-D ones: the runtime's ConvTranspose is 1-D and 2-D.

Output depth slice ``d * stride + k * dilation`` (before the pads are cut) receives input depth
slice ``d`` through the kernel's depth tap ``k``. So each tap ``k`` is one 2-D ConvTranspose of
every input depth slice at once (depth folded into the batch) with that tap's 2-D kernel; its
result is spread over the output depth (zeros between slices for the stride), shifted by
``k * dilation``, and the taps are summed. Then the depth pads are cut and the bias added.
Needs static shapes, a constant weight, explicit pads (no ``auto_pad``) and no
``output_shape``; anything else is left as it is (and refused by the capability table).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper


def conv_transpose_3d(model: onnx.ModelProto) -> int:
    """Rewrites each handled 3-D ConvTranspose; returns how many."""
    from edgepack.model.optimize import static_shapes  # optimize runs this pass

    graph = model.graph
    if not any(n.op_type == "ConvTranspose" for n in graph.node):
        return 0
    shapes = static_shapes(model)
    weights = {i.name: i for i in graph.initializer}
    taken = ({i.name for i in graph.initializer} | {o for n in graph.node for o in n.output}
             | {i.name for i in graph.input})
    done, nodes = 0, list[onnx.NodeProto]()
    for node in graph.node:
        new = None
        if node.op_type == "ConvTranspose" and len(shapes.get(node.input[0], ())) == 5:
            new = _rewrite(graph, node, shapes, weights, taken)
        nodes.extend(new if new is not None else [node])
        done += new is not None
    if done:
        del graph.node[:]
        graph.node.extend(nodes)
    return done


def _rewrite(graph: onnx.GraphProto, node: onnx.NodeProto, shapes: dict[str, tuple[int, ...]],
             weights: dict[str, onnx.TensorProto], taken: set[str]) -> list[onnx.NodeProto] | None:
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if node.input[1] not in weights or "output_shape" in attrs or attrs.get(
            "auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        return None
    n, c, depth, h, w = shapes[node.input[0]]
    kernel = numpy_helper.to_array(weights[node.input[1]])
    kd = kernel.shape[2]
    strides = list(attrs.get("strides", [1, 1, 1]))
    dilations = list(attrs.get("dilations", [1, 1, 1]))
    pads = list(attrs.get("pads", [0] * 6))
    out_pad = list(attrs.get("output_padding", [0, 0, 0]))
    group = int(attrs.get("group", 1))
    co = kernel.shape[1] * group
    full = (depth - 1) * strides[0] + (kd - 1) * dilations[0] + 1 + out_pad[0]
    out_depth = full - pads[0] - pads[3]
    if out_depth < 1:
        return None
    base = node.name or node.output[0]
    new: list[onnx.NodeProto] = []

    def tensor(what: str) -> str:
        name, i = f"{base}/{what}", 0
        while name in taken:
            i += 1
            name = f"{base}/{what}_{i}"
        taken.add(name)
        return name

    def const(what: str, value: np.ndarray) -> str:
        name = tensor(what)
        graph.initializer.append(numpy_helper.from_array(value, name))
        return name

    def add(op: str, inputs: list[str], what: str, **kw: Any) -> str:
        result = tensor(what)
        new.append(helper.make_node(op, inputs, [result], name=result, **kw))
        return result

    def ints(values: list[int]) -> np.ndarray:
        return np.array(values, np.int64)

    slices = add("Transpose", [node.input[0]], "depth_major", perm=[0, 2, 1, 3, 4])
    flat = add("Reshape", [slices, const("flat", ints([n * depth, c, h, w]))], "flat")
    taps = []
    for k in range(kd):
        planar = add("ConvTranspose", [flat, const(f"w{k}", np.ascontiguousarray(
            kernel[:, :, k]))], f"tap{k}", strides=strides[1:], dilations=dilations[1:],
            pads=[pads[1], pads[2], pads[4], pads[5]], output_padding=out_pad[1:], group=group)
        taps.append(planar)
    # every tap's output: [n * depth, co, ho, wo]; spread over depth with the stride
    ho = (h - 1) * strides[1] + (kernel.shape[3] - 1) * dilations[1] + 1 + out_pad[1] \
        - pads[1] - pads[4]
    wo = (w - 1) * strides[2] + (kernel.shape[4] - 1) * dilations[2] + 1 + out_pad[2] \
        - pads[2] - pads[5]
    spread_len = depth * strides[0]
    shifted = []
    for k, planar in enumerate(taps):
        grid = add("Reshape", [planar, const("grid", ints([n, depth, 1, co, ho, wo]))], "grid")
        if strides[0] > 1:
            grid = add("Pad", [grid, const("stride", ints(
                [0, 0, 0, 0, 0, 0, 0, 0, strides[0] - 1, 0, 0, 0]))], "strided")
        spread = add("Reshape", [grid, const("spread", ints([n, spread_len, co, ho, wo]))],
                     "spread")
        before = k * dilations[0]
        after = max(0, full - spread_len - before)
        placed = add("Pad", [spread, const("place", ints(
            [0, before, 0, 0, 0, 0, after, 0, 0, 0]))], "placed")
        shifted.append(add("Slice", [placed, const("start", ints([pads[0]])),
                                     const("stop", ints([pads[0] + out_depth])),
                                     const("axis", ints([1]))], "cut"))
    total = add("Sum", shifted, "sum") if len(shifted) > 1 else shifted[0]
    result = [node.output[0]]
    if len(node.input) > 2 and node.input[2]:
        moved = add("Transpose", [total], "moved", perm=[0, 2, 1, 3, 4])
        bias = add("Reshape", [node.input[2], const("bias_shape", ints([co, 1, 1, 1]))],
                   "bias")
        new.append(helper.make_node("Add", [moved, bias], result, name=f"{base}/out"))
    else:
        new.append(helper.make_node("Transpose", [total], result, perm=[0, 2, 1, 3, 4],
                                    name=f"{base}/out"))
    return new

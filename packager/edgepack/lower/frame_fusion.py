# SPDX-License-Identifier: Apache-2.0
"""Fuses the camera-frame chains of the pre-processing and crop graphs
(``edgepack.model.prepost``) into one device op each, so the runtime reads the uint8 frame once:

``Cast(frame) -> Gather|MatMul (channels) -> Unsqueeze -> Transpose(0, 3, 1, 2) -> [Resize] ->
[Pad] -> [Sub mean] -> [Div std] -> [Identity | Transpose(0, 2, 3, 1)]`` becomes
``FramePreprocess``, and the same chain without Resize and Pad feeding ``RoiAlign`` becomes
``FrameRoiAlign``. Both are device-only ops (``fused_only`` in op_table.toml), implemented in
``sdk_templates/src/runtime/ops/frame_ops.cpp``; the ONNX graphs that the host reference runs keep
the standard ops. A chain that differs in any way (another reader of an intermediate tensor, a
resize mode or padding the op does not take, a frame that is not uint8 [H, W, C]) is left as
it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgepack.lower import device_graph as dg
from edgepack.lower.ops import LoweredNode, NodeIndex

TensorInfo = tuple[str, list[int], bool]
MAX_CHANNELS = 4  # frame_ops.cpp's kMaxChannels


@dataclass
class _Chain:
    nodes: list[LoweredNode] = field(default_factory=list)
    attrs: dict[str, dg.Attr] = field(default_factory=dict)
    out: str = ""  # the tensor the chain ends in (NCHW float)


def _floats(values: Any) -> dg.Attr:
    return dg.Attr(dg.ATTR_FLOATS, [float(v) for v in np.asarray(values).reshape(-1)])


def _ints(values: list[int]) -> dg.Attr:
    return dg.Attr(dg.ATTR_INTS, [int(v) for v in values])


def fuse_frame_ops(nodes: list[LoweredNode], graph_outputs: set[str],
                   consts: Mapping[str, Any], info: Mapping[str, TensorInfo]) -> list[LoweredNode]:
    """``nodes`` with each frame chain replaced by its fused op (see the module docstring)."""
    only_reader = NodeIndex(nodes, graph_outputs).only_reader

    def const(name: str) -> np.ndarray | None:
        return np.asarray(consts[name]) if name in consts else None

    replaced: dict[int, LoweredNode] = {}  # id of the chain's last node -> the fused node
    dropped: set[int] = set()
    for cast in nodes:
        chain = _frame_chain(cast, info, only_reader, const)
        if chain is None:
            continue
        roi = only_reader(chain.out, "RoiAlign")
        if (roi is not None and roi.inputs[0] == chain.out
                and "resized" not in chain.attrs and "pads" not in chain.attrs):
            fused = LoweredNode("FrameRoiAlign", roi.name, [cast.inputs[0], *roi.inputs[1:]],
                                list(roi.outputs), {**chain.attrs, **roi.attrs})
            chain.nodes.append(roi)
        else:
            fused = _preprocess_node(cast, chain, only_reader, info)
        replaced[id(chain.nodes[-1])] = fused
        dropped.update(id(n) for n in chain.nodes)
    return [replaced.get(id(n), n) for n in nodes if id(n) in replaced or id(n) not in dropped]


def _frame_chain(cast: LoweredNode, info: Mapping[str, TensorInfo], only_reader: Any,
                 const: Any) -> _Chain | None:
    """The chain from a Cast of a uint8 [H, W, C] frame to float up to its last Div / Sub / Pad
    / Resize, or None when ``cast`` does not start one."""
    if cast.op_type != "Cast" or len(cast.inputs) != 1 or not cast.inputs[0]:
        return None
    dtype, shape, dynamic = info.get(cast.inputs[0], ("", [], False))
    if (dtype != "uint8" or dynamic or len(shape) != 3 or not 1 <= shape[2] <= MAX_CHANNELS
            or info.get(cast.outputs[0], ("",))[0] != "float32"):
        return None
    c_in = shape[2]
    chain = _Chain([cast])
    t = cast.outputs[0]
    matrix = np.eye(c_in, dtype=np.float32)
    mix = only_reader(t, ("Gather", "MatMul"))
    if mix is not None and mix.inputs[0] == t and const(mix.inputs[1]) is not None:
        w = const(mix.inputs[1])
        if mix.op_type == "Gather" and mix.attrs.get("axis") and mix.attrs["axis"].value == 2:
            picks = w.reshape(-1).astype(np.int64)
            if picks.size > MAX_CHANNELS or np.any((picks < 0) | (picks >= c_in)):
                return None
            matrix = np.eye(c_in, dtype=np.float32)[picks]
        elif mix.op_type == "MatMul" and w.ndim == 2 and w.shape[0] == c_in:
            matrix = w.astype(np.float32).T
        else:
            return None
        chain.nodes.append(mix)
        t = mix.outputs[0]
    unsq = only_reader(t, "Unsqueeze")
    if unsq is None or unsq.attrs.get("axes") is None or list(unsq.attrs["axes"].value) != [0]:
        return None
    tr = only_reader(unsq.outputs[0], "Transpose")
    if tr is None or list(tr.attrs["perm"].value) != [0, 3, 1, 2]:
        return None
    chain.nodes += [unsq, tr]
    t = tr.outputs[0]
    c_out = matrix.shape[0]
    chain.attrs["channel_matrix"] = _floats(matrix)
    resize = only_reader(t, "Resize")
    if resize is not None and _resize_attrs(resize) is not None:
        chain.attrs.update(_resize_attrs(resize) or {})
        chain.nodes.append(resize)
        t = resize.outputs[0]
    pad = only_reader(t, "Pad")
    if pad is not None and _pad_attrs(pad) is not None:
        chain.attrs.update(_pad_attrs(pad) or {})
        chain.nodes.append(pad)
        t = pad.outputs[0]
    for op, key in (("Sub", "mean"), ("Div", "std")):
        node = only_reader(t, op)
        per = _per_channel(node, t, const, c_out) if node is not None else None
        if node is None or per is None:
            continue
        chain.attrs[key] = _floats(per)
        chain.nodes.append(node)
        t = node.outputs[0]
    chain.out = t
    return chain


def _resize_attrs(node: LoweredNode) -> dict[str, dg.Attr] | None:
    """FramePreprocess's resize attributes for the Resize the preprocess graph makes (linear
    half_pixel, or nearest asymmetric floor, on H and W only), else None."""
    a: dict[str, Any] = {k: v.value for k, v in node.attrs.items()}
    linear = (a.get("mode") == "linear" and a.get("coordinate_transformation_mode") == "half_pixel"
              and not a.get("exclude_outside"))
    nearest = (a.get("mode") == "nearest" and a.get("nearest_mode") == "floor"
               and a.get("coordinate_transformation_mode") == "asymmetric")
    scales, sizes = list(a.get("scales", [])), list(a.get("sizes", []))
    if (not (linear or nearest) or len(scales) != 4 or len(sizes) != 4
            or scales[:2] != [1.0, 1.0] or sizes[0] != 1):
        return None
    return {"mode": dg.Attr(dg.ATTR_STRING, "linear" if linear else "nearest"),
            "scales": _floats(scales[2:]), "resized": _ints(sizes[2:])}


def _pad_attrs(node: LoweredNode) -> dict[str, dg.Attr] | None:
    a: dict[str, Any] = {k: v.value for k, v in node.attrs.items()}
    pads = [int(p) for p in a.get("pads", [])]
    if (a.get("mode") != "constant" or len(pads) != 8 or any(p < 0 for p in pads)
            or pads[0] or pads[1] or pads[4] or pads[5]):
        return None
    return {"pads": _ints([pads[2], pads[3], pads[6], pads[7]]),
            "pad_value": dg.Attr(dg.ATTR_FLOAT, float(a.get("constant_value", 0.0)))}


def _per_channel(node: LoweredNode, t: str, const: Any, c: int) -> np.ndarray | None:
    """The constant second operand of ``t op const`` as one value per channel, or None."""
    if len(node.inputs) != 2 or node.inputs[0] != t or "activation" in node.attrs:
        return None
    v = const(node.inputs[1])
    if v is None or v.dtype != np.float32:
        return None
    if v.size == 1:
        return np.full(c, float(v.reshape(-1)[0]), np.float32)
    if v.shape in ((1, c, 1, 1), (c, 1, 1)):
        return np.asarray(v.reshape(-1), np.float32)
    return None


def _preprocess_node(cast: LoweredNode, chain: _Chain, only_reader: Any,
                     info: Mapping[str, TensorInfo]) -> LoweredNode:
    """The FramePreprocess node for a chain (absorbing a following Identity or NHWC
    Transpose)."""
    attrs = dict(chain.attrs)
    _, shape, _ = info[cast.inputs[0]]
    attrs.setdefault("mode", dg.Attr(dg.ATTR_STRING, "none"))
    attrs.setdefault("resized", _ints([shape[0], shape[1]]))
    attrs.setdefault("scales", _floats([1.0, 1.0]))
    attrs.setdefault("pads", _ints([0, 0, 0, 0]))
    out, layout = chain.out, "nchw"
    tail = only_reader(chain.out, ("Identity", "Transpose"))
    if tail is not None and (tail.op_type == "Identity"
                             or list(tail.attrs["perm"].value) == [0, 2, 3, 1]):
        chain.nodes.append(tail)
        out = tail.outputs[0]
        layout = "nhwc" if tail.op_type == "Transpose" else "nchw"
    attrs["layout"] = dg.Attr(dg.ATTR_STRING, layout)
    return LoweredNode("FramePreprocess", cast.name, [cast.inputs[0]], [out], attrs)

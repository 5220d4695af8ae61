# SPDX-License-Identifier: Apache-2.0
"""Per-op lowering rules: ONNX node -> device node with every attribute resolved.

Each rule gets the node, its attributes (opset-17 defaults filled in), the constants and the
static shapes, and returns the device node(s). Constant inputs that configure an op (Reshape
shape, Slice starts, Resize scales, ...) become attributes; see docs/device-graph-format.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import defs, helper

from edgepack.errors import ModelError
from edgepack.lower import device_graph as dg
from edgepack.lower.capabilities import op_table
from edgepack.lower.shapes import ONNX_DTYPES, TensorInfo

__all__ = ["ONNX_DTYPES", "LoweredNode", "lower_node", "resolve_defaults"]

FLT_MAX = 3.4028234663852886e38
_KIND = {
    onnx.AttributeProto.INT: dg.ATTR_INT,
    onnx.AttributeProto.FLOAT: dg.ATTR_FLOAT,
    onnx.AttributeProto.INTS: dg.ATTR_INTS,
    onnx.AttributeProto.FLOATS: dg.ATTR_FLOATS,
    onnx.AttributeProto.STRING: dg.ATTR_STRING,
}


@dataclass
class LoweredNode:
    op_type: str
    name: str
    inputs: list[str]  # "" = omitted optional input
    outputs: list[str]
    attrs: dict[str, dg.Attr] = field(default_factory=dict)


class NodeIndex:
    """Who writes and who reads each tensor of a lowered node list: what the fusion passes ask
    before they merge a node into the one that produces its input."""

    def __init__(self, nodes: list[LoweredNode], graph_outputs: set[str]) -> None:
        self.producer = {n.outputs[0]: n for n in nodes if n.outputs}
        self.readers: dict[str, list[LoweredNode]] = {}
        for n in nodes:
            for i in n.inputs:
                if i:
                    self.readers.setdefault(i, []).append(n)  # twice when read twice
        self.graph_outputs = graph_outputs

    def reads(self, tensor: str) -> int:
        """How many inputs, over all nodes, name ``tensor``."""
        return len(self.readers.get(tensor, []))

    def only_reader(self, tensor: str,
                    op: str | tuple[str, ...] | None = None) -> LoweredNode | None:
        """The one node reading ``tensor`` (of type ``op`` when given) when the tensor is not a
        graph output and has no other reader, else None."""
        found = self.readers.get(tensor, [])
        if len(found) != 1 or tensor in self.graph_outputs:
            return None
        ops = (op,) if isinstance(op, str) else op
        return found[0] if ops is None or found[0].op_type in ops else None


def _to_attr(proto: onnx.AttributeProto) -> dg.Attr | None:
    kind = _KIND.get(proto.type)
    if kind is None:
        return None
    value = helper.get_attribute_value(proto)
    if kind == dg.ATTR_STRING:
        value = value.decode("utf-8")
    elif kind in (dg.ATTR_INTS, dg.ATTR_FLOATS):
        value = [int(v) if kind == dg.ATTR_INTS else float(v) for v in value]
    return dg.Attr(kind, value)


def resolve_defaults(node: onnx.NodeProto) -> dict[str, dg.Attr]:
    """The node's attributes with every opset-17 default that ONNX defines filled in."""
    schema = defs.get_schema(node.op_type, 17, "")
    out: dict[str, dg.Attr] = {}
    for name, a in schema.attributes.items():
        if a.default_value.type != onnx.AttributeProto.UNDEFINED:
            attr = _to_attr(a.default_value)
            if attr is not None:
                out[name] = attr
    for proto in node.attribute:
        attr = _to_attr(proto)
        if attr is not None:
            out[proto.name] = attr
    return out


class _Ctx:
    def __init__(
        self,
        node: onnx.NodeProto,
        attrs: dict[str, dg.Attr],
        consts: dict[str, Any],
        info: dict[str, TensorInfo],
    ) -> None:
        self.node = node
        self.attrs = attrs
        self.consts = consts
        self.info = info
        self.label = f"op '{node.op_type}' (node '{node.name or node.output[0]}')"

    def fail(self, message: str) -> ModelError:
        return ModelError(f"{self.label}: {message}")

    def has_input(self, i: int) -> bool:
        return len(self.node.input) > i and bool(self.node.input[i])

    def const(self, i: int, what: str) -> np.ndarray:
        name = self.node.input[i]
        if name not in self.consts:
            raise self.fail(f"input '{what}' must be a constant (computed '{name}' is not)")
        return np.asarray(self.consts[name])

    def shape(self, name: str) -> list[int]:
        if name not in self.info:
            raise self.fail(f"tensor '{name}' has no static shape")
        return self.info[name][1]

    def in_shape(self, i: int = 0) -> list[int]:
        return self.shape(self.node.input[i])

    def out_shape(self, i: int = 0) -> list[int]:
        return self.shape(self.node.output[i])

    def i(self, name: str) -> int:
        return int(self.attrs[name].value)  # type: ignore[arg-type]

    def ints(self, name: str, default: list[int] | None = None) -> list[int]:
        if name in self.attrs:
            return [int(v) for v in self.attrs[name].value]  # type: ignore[union-attr]
        return list(default or [])

    def s(self, name: str) -> str:
        return str(self.attrs[name].value) if name in self.attrs else ""

    def set_ints(self, name: str, v: list[int]) -> None:
        self.attrs[name] = dg.Attr(dg.ATTR_INTS, [int(x) for x in v])

    def set_floats(self, name: str, v: list[float]) -> None:
        self.attrs[name] = dg.Attr(dg.ATTR_FLOATS, [float(x) for x in v])

    def set_int(self, name: str, v: int) -> None:
        self.attrs[name] = dg.Attr(dg.ATTR_INT, int(v))

    def set_float(self, name: str, v: float) -> None:
        self.attrs[name] = dg.Attr(dg.ATTR_FLOAT, float(v))

    def norm_axis(self, axis: int, rank: int) -> int:
        a = axis + rank if axis < 0 else axis
        if not 0 <= a < max(rank, 1):
            raise self.fail(f"axis {axis} is out of range for rank {rank}")
        return a

    def temp(self, suffix: str, dtype: str, shape: list[int]) -> str:
        """A new intermediate tensor for a rule that lowers one node to several."""
        name = f"{self.node.output[0]}/{suffix}"
        self.info[name] = (dtype, list(shape), self.info[self.node.output[0]][2])
        return name

    def dtype(self, name: str) -> str:
        if name not in self.info:
            raise self.fail(f"tensor '{name}' has no static shape")
        return self.info[name][0]

    def node_as(self, op_type: str, inputs: list[str], outputs: list[str],
                attrs: dict[str, dg.Attr] | None = None, suffix: str = "") -> LoweredNode:
        name = (self.node.name or self.node.output[0]) + suffix
        return LoweredNode(op_type, name, inputs, outputs, dict(attrs or {}))

    def done(self, inputs: list[str] | None = None) -> list[LoweredNode]:
        ins = list(self.node.input) if inputs is None else inputs
        outs = list(self.node.output)
        while outs and not outs[-1]:  # omitted optional outputs at the end
            outs.pop()
        return [LoweredNode(self.node.op_type, self.node.name or self.node.output[0],
                            ins, outs, self.attrs)]


def _spatial_pads(c: _Ctx, in_sp: list[int], kernel: list[int], strides: list[int],
                  dilations: list[int], out_sp: list[int]) -> list[int]:
    n = len(in_sp)
    auto = c.s("auto_pad") or "NOTSET"
    if auto == "NOTSET":
        return c.ints("pads", [0] * (2 * n))
    if auto == "VALID":
        return [0] * (2 * n)
    begin, end = [], []
    for d in range(n):
        eff = (kernel[d] - 1) * dilations[d] + 1
        total = max((out_sp[d] - 1) * strides[d] + eff - in_sp[d], 0)
        small = total // 2
        b = small if auto == "SAME_UPPER" else total - small
        begin.append(b)
        end.append(total - b)
    return begin + end


def _conv_like(c: _Ctx, weight_index: int, transpose: bool = False) -> list[LoweredNode]:
    x = c.in_shape(0)
    w = c.in_shape(weight_index) if c.node.op_type != "MaxPool" else []
    if len(x) != 4:
        raise c.fail(f"only 2-D spatial inputs (rank 4, NCHW) are supported, got rank {len(x)}")
    out = c.out_shape(0)
    kernel = c.ints("kernel_shape", w[2:] if w else None)
    strides = c.ints("strides", [1, 1])
    dilations = c.ints("dilations", [1, 1])
    if transpose:
        op = c.ints("output_padding", [0, 0])
        pads = c.ints("pads", [0, 0, 0, 0])
        auto = c.s("auto_pad") or "NOTSET"
        if auto in ("SAME_UPPER", "SAME_LOWER") or "output_shape" in c.attrs:
            # ONNX: total = stride * (in - 1) + output_padding + eff_kernel - out, split
            # begin/end by auto_pad. A negative end (output_shape beyond what the pads give)
            # is extra output_padding at the end; a negative begin would shift the output.
            begin, end = [], []
            for d in range(2):
                eff = (kernel[d] - 1) * dilations[d] + 1
                total = strides[d] * (x[2 + d] - 1) + op[d] + eff - out[2 + d]
                b = total // 2 if auto == "SAME_UPPER" else total - total // 2
                e = total - b
                if e < 0:
                    op[d] -= e
                    e = 0
                if b < 0:
                    raise c.fail(f"output_shape {out[2:]} needs a negative leading pad")
                begin.append(b)
                end.append(e)
            pads = begin + end
        elif auto == "VALID":
            pads = [0, 0, 0, 0]
        c.set_ints("output_padding", op)
        c.attrs.pop("output_shape", None)
    else:
        pads = _spatial_pads(c, x[2:], kernel, strides, dilations, out[2:])
    c.set_ints("kernel_shape", kernel)
    c.set_ints("strides", strides)
    c.set_ints("dilations", dilations)
    c.set_ints("pads", pads)
    c.attrs["auto_pad"] = dg.Attr(dg.ATTR_STRING, "NOTSET")
    return c.done()


def _conv(c: _Ctx) -> list[LoweredNode]:
    if len(c.in_shape(0)) == 3:
        return _as_2d(c, _conv)
    return _conv_like(c, 1)


def _conv_transpose(c: _Ctx) -> list[LoweredNode]:
    if len(c.in_shape(0)) == 3:
        return _as_2d(c, _conv_transpose)
    return _conv_like(c, 1, transpose=True)


_SPATIAL_ONE = {"kernel_shape": 1, "strides": 1, "dilations": 1, "output_shape": 1,
                "output_padding": 0}


def _as_2d(c: _Ctx, rule: Callable[[_Ctx], list[LoweredNode]]) -> list[LoweredNode]:
    """A 1-D Conv/ConvTranspose/pool as its 2-D form over [N, C, 1, L]: Reshape in, the 2-D
    node (a constant weight reshaped at pack time), Reshape out."""
    x, out = c.node.input[0], c.node.output[0]
    xs, ys = c.in_shape(0), c.out_shape(0)
    dtype = c.dtype(x)
    x2 = c.temp("in2d", dtype, [xs[0], xs[1], 1, xs[2]])
    y2 = c.temp("out2d", dtype, [ys[0], ys[1], 1, ys[2]])
    inputs = [x2, *c.node.input[1:]]
    if c.node.op_type in ("Conv", "ConvTranspose"):
        w = c.const(1, "W")
        w2 = f"{c.node.input[1]}/2d"
        c.consts[w2] = w.reshape(w.shape[0], w.shape[1], 1, w.shape[2])
        c.info[w2] = (c.dtype(c.node.input[1]), list(c.consts[w2].shape), False)
        inputs[1] = w2
    node = onnx.NodeProto()
    node.CopyFrom(c.node)
    del node.input[:]
    node.input.extend(inputs)
    node.output[0] = y2
    attrs = dict(c.attrs)
    for name, fill in _SPATIAL_ONE.items():
        if name in attrs:
            attrs[name] = dg.Attr(dg.ATTR_INTS, [fill, *c.ints(name)])
    if "pads" in attrs:
        b, e = c.ints("pads")
        attrs["pads"] = dg.Attr(dg.ATTR_INTS, [0, b, 0, e])
    c.info[y2] = (dtype, [ys[0], ys[1], 1, ys[2]], c.info[out][2])
    inner = rule(_Ctx(node, attrs, c.consts, c.info))
    reshape_in = c.node_as("Reshape", [x], [x2],
                           {"shape": dg.Attr(dg.ATTR_INTS, [xs[0], xs[1], 1, xs[2]])},
                           suffix="/in2d")
    reshape_out = c.node_as("Reshape", [y2], [out], {"shape": dg.Attr(dg.ATTR_INTS, list(ys))},
                            suffix="/out1d")
    return [reshape_in, *inner, reshape_out]


def _pool(c: _Ctx) -> list[LoweredNode]:
    indices = len([o for o in c.node.output if o]) > 1
    if len(c.in_shape(0)) == 3 and not indices:
        return _as_2d(c, _pool)
    if indices and len(c.in_shape(0)) == 3:
        raise c.fail("the Indices output of a 1-D MaxPool is not supported")
    x = c.in_shape(0)
    if len(x) not in (4, 5):
        raise c.fail(f"only 1-D, 2-D and 3-D pooling (rank 3 to 5) is supported, got rank {len(x)}")
    n = len(x) - 2
    kernel = c.ints("kernel_shape")
    strides = c.ints("strides", [1] * n)
    dilations = c.ints("dilations", [1] * n)
    pads = _spatial_pads(c, x[2:], kernel, strides, dilations, c.out_shape(0)[2:])
    c.set_ints("strides", strides)
    c.set_ints("dilations", dilations)
    c.set_ints("pads", pads)
    c.attrs["auto_pad"] = dg.Attr(dg.ATTR_STRING, "NOTSET")
    if "ceil_mode" in c.attrs and c.i("ceil_mode"):
        _ceil_pool_shape(c, x, kernel, strides, dilations, pads)
    return c.done()


def _ceil_pool_shape(c: _Ctx, x: list[int], kernel: list[int], strides: list[int],
                     dilations: list[int], pads: list[int]) -> None:
    """The output shape of a ceil_mode pool as onnxruntime computes it (a last window that
    would start in the end padding is dropped; onnx's shape inference keeps it)."""
    out = list(c.out_shape(0))
    n = len(x) - 2
    for d in range(n):
        span = x[2 + d] + pads[d] + pads[n + d] - ((kernel[d] - 1) * dilations[d] + 1)
        o = -(-span // strides[d]) + 1
        if (o - 1) * strides[d] >= x[2 + d] + pads[d]:
            o -= 1
        out[2 + d] = o
    name = c.node.output[0]
    if out != c.info[name][1]:
        c.info[name] = (c.info[name][0], out, c.info[name][2])


def _clip(c: _Ctx) -> list[LoweredNode]:
    lo = float(c.const(1, "min").reshape(-1)[0]) if c.has_input(1) else -FLT_MAX
    hi = float(c.const(2, "max").reshape(-1)[0]) if c.has_input(2) else FLT_MAX
    c.set_float("min", lo)
    c.set_float("max", hi)
    return c.done([c.node.input[0]])


def _axis_op(c: _Ctx) -> list[LoweredNode]:
    rank = len(c.in_shape(0))
    if c.node.op_type == "Concat":
        rank = len(c.out_shape(0))
    c.set_int("axis", c.norm_axis(c.i("axis"), rank))
    return c.done()


def _flatten(c: _Ctx) -> list[LoweredNode]:
    rank = len(c.in_shape(0))
    axis = c.i("axis")
    c.set_int("axis", axis + rank if axis < 0 else axis)
    return c.done()


def _reshape_like(c: _Ctx) -> list[LoweredNode]:
    if c.node.op_type in ("Squeeze", "Unsqueeze") and c.has_input(1):
        rank = len(c.out_shape(0)) if c.node.op_type == "Unsqueeze" else len(c.in_shape(0))
        c.set_ints("axes", [c.norm_axis(int(a), rank) for a in c.const(1, "axes").reshape(-1)])
    c.set_ints("shape", c.out_shape(0))
    c.attrs.pop("allowzero", None)
    return c.done([c.node.input[0]])


def _transpose(c: _Ctx) -> list[LoweredNode]:
    rank = len(c.in_shape(0))
    c.set_ints("perm", c.ints("perm", list(range(rank))[::-1]))
    return c.done()


def _split(c: _Ctx) -> list[LoweredNode]:
    rank = len(c.in_shape(0))
    axis = c.norm_axis(c.i("axis"), rank)
    c.set_int("axis", axis)
    c.set_ints("split", [c.shape(o)[axis] for o in c.node.output])
    return c.done([c.node.input[0]])


def _slice(c: _Ctx) -> list[LoweredNode]:
    x = c.in_shape(0)
    rank = len(x)
    starts = c.const(1, "starts").reshape(-1).tolist()
    axes = c.const(3, "axes").reshape(-1).tolist() if c.has_input(3) else list(range(len(starts)))
    steps = c.const(4, "steps").reshape(-1).tolist() if c.has_input(4) else [1] * len(starts)
    full_start, full_step = [0] * rank, [1] * rank
    for s, a, st in zip(starts, axes, steps, strict=True):
        a = c.norm_axis(int(a), rank)
        dim = x[a]
        if st == 0:
            raise c.fail("a slice step of 0 is invalid")
        s = s + dim if s < 0 else s
        s = min(max(s, 0), dim) if st > 0 else min(max(s, 0), dim - 1)
        full_start[a], full_step[a] = int(s), int(st)
    c.set_ints("starts", full_start)
    c.set_ints("steps", full_step)
    c.attrs.pop("ends", None)
    return c.done([c.node.input[0]])


def _pad(c: _Ctx) -> list[LoweredNode]:
    rank = len(c.in_shape(0))
    pads = c.const(1, "pads").reshape(-1).tolist()
    value = float(c.const(2, "constant_value").reshape(-1)[0]) if c.has_input(2) and c.const(
        2, "constant_value").size else 0.0
    if c.has_input(3):
        axes = [c.norm_axis(int(a), rank) for a in c.const(3, "axes").reshape(-1)]
        full = [0] * (2 * rank)
        for k, a in enumerate(axes):
            full[a], full[rank + a] = pads[k], pads[len(axes) + k]
        pads = full
    if len(pads) != 2 * rank:
        raise c.fail(f"pads has {len(pads)} values, expected {2 * rank}")
    c.set_ints("pads", [int(p) for p in pads])
    c.set_float("constant_value", value)
    if c.s("mode") not in ("constant", "reflect", "edge"):
        raise c.fail(f"pad mode '{c.s('mode')}' is not supported")
    return c.done([c.node.input[0]])


def _resize(c: _Ctx) -> list[LoweredNode]:
    x, y = c.in_shape(0), c.out_shape(0)
    mode = c.s("mode")
    ctm = c.s("coordinate_transformation_mode")
    if mode not in ("nearest", "linear", "cubic"):
        raise c.fail(f"mode '{mode}' is not supported (nearest, linear, cubic)")
    if ctm not in ("half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel",
                   "tf_crop_and_resize"):
        raise c.fail(f"coordinate_transformation_mode '{ctm}' is not supported")
    scales: list[float] = []
    if c.has_input(2) and c.const(2, "scales").size:
        scales = [float(v) for v in c.const(2, "scales").reshape(-1)]
    else:
        scales = [yo / xi for xi, yo in zip(x, y, strict=True)]
    if mode != "nearest":
        moving = [d for d in range(len(x)) if x[d] != y[d] or scales[d] != 1.0]
        if any(d < len(x) - 2 for d in moving):
            raise c.fail(f"{mode} resize is supported on the last two dimensions only")
    if ctm == "tf_crop_and_resize":
        roi = c.const(1, "roi").reshape(-1) if c.has_input(1) else np.zeros(0)
        if roi.size != 2 * len(x):
            raise c.fail(f"roi has {roi.size} values, expected {2 * len(x)}")
        c.set_floats("roi", [float(v) for v in roi])
    c.set_floats("scales", scales)
    c.set_ints("sizes", y)
    return c.done([c.node.input[0]])


def _reduce(c: _Ctx) -> list[LoweredNode]:
    rank = len(c.in_shape(0))
    # ReduceSum (opset 13) takes its axes as an input, the others as an attribute.
    axes = ([int(a) for a in c.const(1, "axes").reshape(-1)] if c.has_input(1)
            else c.ints("axes"))
    noop = bool(c.i("noop_with_empty_axes")) if "noop_with_empty_axes" in c.attrs else False
    if not axes and not noop:
        axes = list(range(rank))
    c.set_ints("axes", sorted({c.norm_axis(a, rank) for a in axes}))
    return c.done([c.node.input[0]])


def _expand(c: _Ctx) -> list[LoweredNode]:
    c.set_ints("shape", c.out_shape(0))
    return c.done([c.node.input[0]])


def _tile(c: _Ctx) -> list[LoweredNode]:
    c.set_ints("repeats", [int(r) for r in c.const(1, "repeats").reshape(-1)])
    return c.done([c.node.input[0]])


def _range(c: _Ctx) -> list[LoweredNode]:
    start = c.const(0, "start").reshape(-1)[0]
    delta = c.const(2, "delta").reshape(-1)[0]
    if np.issubdtype(np.asarray(start).dtype, np.integer):
        c.set_int("start", int(start))
        c.set_int("delta", int(delta))
    else:
        c.set_float("start", float(start))
        c.set_float("delta", float(delta))
    return c.done([])


def _cumsum(c: _Ctx) -> list[LoweredNode]:
    axis = int(c.const(1, "axis").reshape(-1)[0])
    c.set_int("axis", c.norm_axis(axis, len(c.in_shape(0))))
    return c.done([c.node.input[0]])


def _trilu(c: _Ctx) -> list[LoweredNode]:
    c.set_int("k", int(c.const(1, "k").reshape(-1)[0]) if c.has_input(1) else 0)
    return c.done([c.node.input[0]])


def _onehot(c: _Ctx) -> list[LoweredNode]:
    depth = int(c.const(1, "depth").reshape(-1)[0])
    if depth < 1:
        raise c.fail(f"depth {depth} must be >= 1")
    c.set_int("depth", depth)
    c.set_int("axis", c.norm_axis(c.i("axis"), len(c.in_shape(0)) + 1))
    return c.done([c.node.input[0], c.node.input[2]])


def _data_axis(c: _Ctx) -> list[LoweredNode]:
    c.set_int("axis", c.norm_axis(c.i("axis"), len(c.in_shape(0))))
    return c.done()


def _einsum(c: _Ctx) -> list[LoweredNode]:
    """Makes the equation explicit: ellipses become letters, the output is spelled out."""
    eq = c.s("equation").replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len([i for i in c.node.input if i]):
        raise c.fail(f"equation '{eq}' does not match the input count")
    used = set("".join(terms) + rhs)
    spare = [ch for ch in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if ch not in used]
    ell_rank = 0
    for k, t in enumerate(terms):
        if "..." in t:
            ell_rank = max(ell_rank, len(c.in_shape(k)) - (len(t) - 3))
    ell = "".join(spare[:ell_rank])
    out_terms = []
    for k, t in enumerate(terms):
        if "..." in t:
            n = len(c.in_shape(k)) - (len(t) - 3)
            t = t.replace("...", ell[ell_rank - n:] if n else "")
        out_terms.append(t)
    sizes: dict[str, int] = {}
    for k, t in enumerate(out_terms):
        shape = c.in_shape(k)
        if len(t) != len(shape) or (t and not t.isalpha()):
            raise c.fail(f"equation term '{terms[k]}' does not match input {k} of shape {shape}")
        for ch, n in zip(t, shape, strict=True):
            if sizes.setdefault(ch, n) != n and 1 not in (n, sizes[ch]):
                raise c.fail(f"letter '{ch}' has sizes {sizes[ch]} and {n}")
    if not arrow:
        counts = {ch: "".join(out_terms).count(ch) for ch in set("".join(out_terms))}
        rhs = ell + "".join(sorted(ch for ch, n in counts.items() if n == 1 and ch not in ell))
    else:
        rhs = rhs.replace("...", ell)
    c.attrs["equation"] = dg.Attr(dg.ATTR_STRING, ",".join(out_terms) + "->" + rhs)
    return c.done()


def _topk(c: _Ctx) -> list[LoweredNode]:
    rank = len(c.in_shape(0))
    axis = c.norm_axis(c.i("axis"), rank)
    c.set_int("axis", axis)
    if c.node.input[1] in c.consts:
        c.set_int("k", int(c.const(1, "K").reshape(-1)[0]))
        return c.done([c.node.input[0]])
    return c.done()


def _nms(c: _Ctx) -> list[LoweredNode]:
    def scalar(i: int, what: str, default: float) -> float:
        return float(c.const(i, what).reshape(-1)[0]) if c.has_input(i) else default

    c.set_int("max_output_boxes_per_class", int(scalar(2, "max_output_boxes_per_class", 0)))
    c.set_float("iou_threshold", scalar(3, "iou_threshold", 0.0))
    c.set_int("has_score_threshold", int(c.has_input(4)))
    c.set_float("score_threshold", scalar(4, "score_threshold", 0.0))
    return c.done(list(c.node.input[:2]))


def _gather(c: _Ctx) -> list[LoweredNode]:
    c.set_int("axis", c.norm_axis(c.i("axis"), len(c.in_shape(0))))
    return c.done()


def _cast(c: _Ctx) -> list[LoweredNode]:
    if c.i("to") not in ONNX_DTYPES:
        raise c.fail(f"cast to ONNX type {c.i('to')} is not supported "
                     f"({', '.join(sorted(set(ONNX_DTYPES.values())))})")
    return c.done()


_BINARY_OF = {"Min": "Min", "Max": "Max", "Sum": "Add", "Mean": "Add"}


def _variadic(c: _Ctx) -> list[LoweredNode]:
    """Min/Max/Sum/Mean of N inputs as a chain of binary nodes (Mean: then a Div by N;
    one input: Identity)."""
    ins = [i for i in c.node.input if i]
    out = c.node.output[0]
    mean = c.node.op_type == "Mean" and len(ins) > 1
    if len(ins) == 1:
        return [c.node_as("Identity", ins, [out])]
    nodes: list[LoweredNode] = []
    acc = ins[0]
    for k, nxt in enumerate(ins[1:], start=1):
        last = k == len(ins) - 1 and not mean
        target = out if last else c.temp(f"{c.node.op_type.lower()}{k}", c.dtype(out),
                                          _broadcast(c.shape(acc), c.in_shape(k)))
        suffix = "" if last else f"/{k}"
        nodes.append(c.node_as(_BINARY_OF[c.node.op_type], [acc, nxt], [target], suffix=suffix))
        acc = target
    if mean:
        count = f"{out}/count"
        c.consts[count] = np.array(len(ins), dtype=dg.NUMPY_DTYPES[c.dtype(out)])
        c.info[count] = (c.dtype(out), [], False)
        nodes.append(c.node_as("Div", [acc, count], [out]))
    return nodes


def _broadcast(a: list[int], b: list[int]) -> list[int]:
    return [int(d) for d in np.broadcast_shapes(tuple(a), tuple(b))]


def _cast_like(c: _Ctx) -> list[LoweredNode]:
    to = next(k for k, v in ONNX_DTYPES.items() if v == c.dtype(c.node.input[1]))
    return [c.node_as("Cast", [c.node.input[0]], [c.node.output[0]],
                      {"to": dg.Attr(dg.ATTR_INT, to)})]


def _passthrough(c: _Ctx) -> list[LoweredNode]:
    return c.done()


_RULES: dict[str, Callable[[_Ctx], list[LoweredNode]]] = {
    "Conv": _conv,
    "ConvTranspose": _conv_transpose,
    "MaxPool": _pool,
    "AveragePool": _pool,
    "Clip": _clip,
    "Softmax": _axis_op,
    "Concat": _axis_op,
    "ArgMax": _axis_op,
    "Gather": _gather,
    "Flatten": _flatten,
    "Reshape": _reshape_like,
    "Squeeze": _reshape_like,
    "Unsqueeze": _reshape_like,
    "Transpose": _transpose,
    "Split": _split,
    "Slice": _slice,
    "Pad": _pad,
    "Resize": _resize,
    "ReduceMean": _reduce,
    "ReduceMax": _reduce,
    "ReduceMin": _reduce,
    "ReduceSum": _reduce,
    "ReduceProd": _reduce,
    "ReduceL1": _reduce,
    "ReduceL2": _reduce,
    "ReduceSumSquare": _reduce,
    "ReduceLogSum": _reduce,
    "ReduceLogSumExp": _reduce,
    "ArgMin": _axis_op,
    "Expand": _expand,
    "Tile": _tile,
    "Range": _range,
    "GatherElements": _data_axis,
    "ScatterElements": _data_axis,
    "Einsum": _einsum,
    "CumSum": _cumsum,
    "Trilu": _trilu,
    "OneHot": _onehot,
    "LpNormalization": _data_axis,
    "TopK": _topk,
    "NonMaxSuppression": _nms,
    "Cast": _cast,
    "CastLike": _cast_like,
    "Min": _variadic,
    "Max": _variadic,
    "Sum": _variadic,
    "Mean": _variadic,
}


def lower_node(
    node: onnx.NodeProto,
    attrs: dict[str, dg.Attr],
    consts: dict[str, Any],
    info: dict[str, TensorInfo],
) -> list[LoweredNode]:
    c = _Ctx(node, attrs, consts, info)
    for o in node.output:
        if o and o not in info:
            raise c.fail(f"output '{o}' has no static shape (or an unsupported dtype)")
    if node.op_type == "Softmax" and math.prod(c.in_shape(0)) == 0:
        raise c.fail("empty input")
    rule = _RULES.get(node.op_type, _passthrough)
    cap = op_table().get(node.op_type)
    narrow = {c.dtype(o) for o in node.output if o} | {
        c.dtype(i) for i in node.input if i and i in info}
    if cap is not None and narrow & set(cap.via_float32):
        return _via_float32(c, rule, narrow & set(cap.via_float32))
    return rule(c)


_NP_DTYPES = {"float16": np.float16, "uint8": np.uint8, "int8": np.int8}


def _via_float32(c: _Ctx, rule: Callable[[_Ctx], list[LoweredNode]],
                 narrow: set[str]) -> list[LoweredNode]:
    """The node computed in float32: its ``narrow``-dtype inputs cast up (constants at pack
    time), its narrow outputs cast back (the table's ``via_float32``)."""
    before: list[LoweredNode] = []
    after: list[LoweredNode] = []
    node = onnx.NodeProto()
    node.CopyFrom(c.node)
    for k, name in enumerate(c.node.input):
        if not name or c.info.get(name, ("",))[0] not in narrow:
            continue
        wide = f"{name}/f32"
        if name in c.consts:
            c.consts[wide] = np.asarray(c.consts[name]).astype(np.float32)
            c.info[wide] = ("float32", list(c.consts[wide].shape), False)
        elif wide not in c.info:
            c.info[wide] = ("float32", c.info[name][1], c.info[name][2])
            before.append(c.node_as("Cast", [name], [wide], {"to": dg.Attr(dg.ATTR_INT, 1)},
                                    suffix=f"/in{k}_f32"))
        node.input[k] = wide
    for k, name in enumerate(c.node.output):
        if not name or c.info[name][0] not in narrow:
            continue
        wide = c.temp(f"out{k}_f32", "float32", c.info[name][1])
        to = next(code for code, n in ONNX_DTYPES.items() if n == c.info[name][0])
        after.append(c.node_as("Cast", [wide], [name], {"to": dg.Attr(dg.ATTR_INT, to)},
                               suffix=f"/out{k}"))
        node.output[k] = wide
    return [*before, *rule(_Ctx(node, dict(c.attrs), c.consts, c.info)), *after]

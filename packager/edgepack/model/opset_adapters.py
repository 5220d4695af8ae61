# SPDX-License-Identifier: Apache-2.0
"""The per-op adapters of the opset down-conversion (``opset.downgrade``): each edits one node
whose signature changed after opset 17 into its opset-17 form, or refuses it by name.

An adapter reads constants and static shapes from the ``Context`` (built after shape
computations are folded) and may add constant tensors. A rewrite (``REWRITES``, and
``bool_reduce``) replaces one node by several opset-17 nodes: float16 Celu/IsInf/Range computed
in float32, int16/uint16 QuantizeLinear/DequantizeLinear as arithmetic, Pad ``wrap`` as a
Gather per padded axis, AveragePool ``dilations`` (and opset 19's ceil_mode rule) as
strided slices.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgepack.errors import ModelError

CANONICAL_OPSET = 17

_REDUCE_AXES_INPUT = {"ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
                      "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"}


@dataclass
class Context:
    path_str: str
    graph: onnx.GraphProto
    constants: dict[str, np.ndarray]
    shapes: dict[str, tuple[int, ...]]
    types: dict[str, onnx.TypeProto]
    reserved: set[str] = field(default_factory=set)
    opset: int = CANONICAL_OPSET  # the model's, before conversion

    def fresh(self, base: str) -> str:
        """A tensor name no node, value or constant of the graph uses yet."""
        if not self.reserved:
            self.reserved = ({o for n in self.graph.node for o in n.output}
                             | {i for n in self.graph.node for i in n.input}
                             | set(self.types) | set(self.constants)
                             | {i.name for i in self.graph.initializer})
        name, n = base, 0
        while name in self.reserved:
            n += 1
            name = f"{base}_{n}"
        self.reserved.add(name)
        return name

    def elem_type(self, name: str) -> int | None:
        kind = self.types.get(name)
        return kind.tensor_type.elem_type if kind is not None else None

    def fail(self, node: onnx.NodeProto, why: str, hint: str | None = None) -> ModelError:
        return ModelError(f"{self.path_str}: node {node.name!r} ({node.op_type}) {why}",
                          hint=hint or f"re-export the model with opset {CANONICAL_OPSET}")

    def constant(self, node: onnx.NodeProto, index: int, what: str) -> np.ndarray:
        name = node.input[index] if index < len(node.input) else ""
        if name not in self.constants:
            raise self.fail(node, f"takes its {what} from tensor {name!r}, which is computed at "
                            f"run time; opset {CANONICAL_OPSET} needs it constant")
        return self.constants[name]

    def rank(self, node: onnx.NodeProto, name: str) -> int:
        if name not in self.shapes:
            raise self.fail(node, f"needs the static shape of {name!r}, which is unknown")
        return len(self.shapes[name])

    def add_constant(self, base: str, value: np.ndarray) -> str:
        taken = {i.name for i in self.graph.initializer} | set(self.constants)
        name, n = base, 0
        while name in taken:
            n += 1
            name = f"{base}_{n}"
        self.graph.initializer.append(numpy_helper.from_array(value, name))
        self.constants[name] = value
        return name


def _attrs(node: onnx.NodeProto) -> dict[str, object]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _drop_attr(node: onnx.NodeProto, name: str) -> None:
    for a in list(node.attribute):
        if a.name == name:
            node.attribute.remove(a)


def _set_attr(node: onnx.NodeProto, name: str, value: object) -> None:
    _drop_attr(node, name)
    node.attribute.append(helper.make_attribute(name, value))


def _as_str(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _reduce(ctx: Context, node: onnx.NodeProto) -> None:
    """Reduce* (18): axes moved from an attribute to an optional input."""
    attrs = _attrs(node)
    noop = bool(attrs.get("noop_with_empty_axes", 0))
    _drop_attr(node, "noop_with_empty_axes")
    axes = ctx.constant(node, 1, "axes") if len(node.input) > 1 and node.input[1] else None
    del node.input[1:]
    if axes is not None and axes.size:
        _set_attr(node, "axes", [int(a) for a in axes.reshape(-1)])
    elif noop:
        node.op_type = "Identity"
        del node.attribute[:]


def _split(ctx: Context, node: onnx.NodeProto) -> None:
    """Split (18): ``num_outputs`` may leave a smaller last part; 13 splits evenly or by sizes."""
    attrs = _attrs(node)
    _drop_attr(node, "num_outputs")
    if "num_outputs" not in attrs or (len(node.input) > 1 and node.input[1]):
        return
    parts = int(attrs["num_outputs"])  # type: ignore[call-overload]
    if node.input[0] not in ctx.shapes:
        raise ctx.fail(node, f"needs the static shape of {node.input[0]!r} to split it")
    shape = ctx.shapes[node.input[0]]
    length = shape[int(attrs.get("axis", 0)) % len(shape)]  # type: ignore[call-overload]
    chunk = -(-length // parts)
    sizes = [min(chunk, max(length - i * chunk, 0)) for i in range(parts)]
    name = ctx.add_constant(f"{node.name}/split", np.array(sizes, np.int64))
    node.input[:] = [node.input[0], name]


def _pad(ctx: Context, node: onnx.NodeProto) -> None:
    """Pad (18): optional ``axes`` input; (19): ``wrap`` mode (``REWRITES`` turns it into
    Gathers when the shape and pads are static)."""
    if _as_str(_attrs(node).get("mode", "constant")) == "wrap":
        raise ctx.fail(node, "uses mode 'wrap' with pads or a shape that are not static, "
                       "which opset 17 and the runtime lack")
    if len(node.input) < 4 or not node.input[3]:
        return
    axes = ctx.constant(node, 3, "axes").reshape(-1).astype(np.int64)
    pads = ctx.constant(node, 1, "pads").reshape(-1).astype(np.int64)
    rank = ctx.rank(node, node.input[0])
    full = np.zeros(2 * rank, np.int64)
    for i, axis in enumerate(axes):
        full[int(axis) % rank] = pads[i]
        full[int(axis) % rank + rank] = pads[i + len(axes)]
    node.input[1] = ctx.add_constant(f"{node.name}/pads", full)
    del node.input[3:]


def _resize(ctx: Context, node: onnx.NodeProto) -> None:
    """Resize (18): ``axes``, ``antialias``, ``keep_aspect_ratio_policy``; (19): a new mode."""
    attrs = _attrs(node)
    if int(attrs.get("antialias", 0)):  # type: ignore[call-overload]
        raise ctx.fail(node, "uses antialias=1, which opset 17 and the runtime lack")
    if _as_str(attrs.get("coordinate_transformation_mode", "")) == "half_pixel_symmetric":
        raise ctx.fail(node, "uses coordinate_transformation_mode 'half_pixel_symmetric', "
                       "which opset 17 and the runtime lack")
    policy = _as_str(attrs.get("keep_aspect_ratio_policy", "stretch"))
    axes_attr = attrs.get("axes")
    for name in ("antialias", "keep_aspect_ratio_policy", "axes"):
        _drop_attr(node, name)
    if axes_attr is None and policy == "stretch":
        return
    rank = ctx.rank(node, node.input[0])
    in_shape = ctx.shapes[node.input[0]]
    axes = [int(a) % rank for a in (axes_attr or range(rank))]  # type: ignore[attr-defined]
    inputs = list(node.input) + [""] * (4 - len(node.input))
    if inputs[1]:
        roi = ctx.constant(node, 1, "roi").reshape(-1).astype(np.float32)
        full_roi = np.array([0.0] * rank + [1.0] * rank, np.float32)
        for i, a in enumerate(axes):
            full_roi[a], full_roi[a + rank] = roi[i], roi[i + len(axes)]
        inputs[1] = ctx.add_constant(f"{node.name}/roi", full_roi)
    if inputs[3]:
        sizes = ctx.constant(node, 3, "sizes").reshape(-1).astype(np.int64)
        if policy != "stretch":
            ratios = [sizes[i] / in_shape[a] for i, a in enumerate(axes)]
            scale = min(ratios) if policy == "not_larger" else max(ratios)
            sizes = np.array([int(np.round(scale * in_shape[a])) for a in axes], np.int64)
        full = np.array(in_shape, np.int64)
        full[axes] = sizes
        inputs[3] = ctx.add_constant(f"{node.name}/sizes", full)
    elif inputs[2]:
        scales = ctx.constant(node, 2, "scales").reshape(-1).astype(np.float32)
        full_scales = np.ones(rank, np.float32)
        full_scales[axes] = scales
        inputs[2] = ctx.add_constant(f"{node.name}/scales", full_scales)
    node.input[:] = inputs[:4] if inputs[3] else inputs[:3]


def _average_pool(ctx: Context, node: onnx.NodeProto) -> None:
    """AveragePool (19): ``dilations``."""
    dilations = _attrs(node).get("dilations")
    if dilations is not None and any(int(d) != 1 for d in dilations):  # type: ignore[attr-defined]
        raise ctx.fail(node, f"uses dilations {list(dilations)}, which opset 17 lacks")  # type: ignore[call-overload]
    _drop_attr(node, "dilations")


def _grid_sample(ctx: Context, node: onnx.NodeProto) -> None:
    """GridSample (20): modes renamed and N-D; 16 is 2-D with 'bilinear'/'bicubic'."""
    if ctx.rank(node, node.input[0]) != 4:
        raise ctx.fail(node, "samples a non-4-D tensor, which opset 17 lacks")
    mode = _as_str(_attrs(node).get("mode", "linear"))
    _set_attr(node, "mode", {"linear": "bilinear", "cubic": "bicubic"}.get(mode, mode))


def _cast(ctx: Context, node: onnx.NodeProto) -> None:
    """Cast/CastLike (19): ``saturate`` only matters for float8 targets, which 17 lacks."""
    _drop_attr(node, "saturate")


def _scatter(ctx: Context, node: onnx.NodeProto) -> None:
    """ScatterND/ScatterElements (18): reductions 'max' and 'min'."""
    reduction = _as_str(_attrs(node).get("reduction", "none"))
    if reduction in ("max", "min"):
        raise ctx.fail(node, f"uses reduction {reduction!r}, which opset 17 lacks")


ADAPTERS: dict[str, Callable[[Context, onnx.NodeProto], None]] = {
    **dict.fromkeys(_REDUCE_AXES_INPUT, _reduce),
    "Split": _split, "Pad": _pad, "Resize": _resize, "AveragePool": _average_pool,
    "GridSample": _grid_sample, "Cast": _cast, "CastLike": _cast, "ScatterND": _scatter,
    "ScatterElements": _scatter,
}


def bool_reduce(ctx: Context, node: onnx.NodeProto) -> list[onnx.NodeProto]:
    """ReduceMax/ReduceMin of bool (20): opset 17 reduces uint8, so cast there and back."""
    kind = ctx.types.get(node.input[0]) if node.input else None
    if node.op_type not in ("ReduceMax", "ReduceMin") or kind is None or (
        kind.tensor_type.elem_type != onnx.TensorProto.BOOL
    ):
        return [node]
    taken = {o for n in ctx.graph.node for o in n.output} | set(ctx.types) | set(ctx.constants)
    widened, reduced = f"{node.name}/as_uint8", f"{node.name}/reduced_uint8"
    while widened in taken or reduced in taken:
        widened, reduced = widened + "_", reduced + "_"
    source, output = node.input[0], node.output[0]
    node.input[0], node.output[0] = widened, reduced
    return [
        helper.make_node("Cast", [source], [widened], to=onnx.TensorProto.UINT8,
                         name=f"{node.name}/to_uint8"),
        node,
        helper.make_node("Cast", [reduced], [output], to=onnx.TensorProto.BOOL,
                         name=f"{node.name}/to_bool"),
    ]


# ---- rewrites: one node in, opset-17 nodes out (None: not this node's case) ----------------

TP = onnx.TensorProto


def _float16_via_float32(ctx: Context, node: onnx.NodeProto) -> list[onnx.NodeProto] | None:
    """Celu (float16 since 22), IsInf (20), Range: opset 17 computes them in float32 only;
    cast the float16 inputs up and the float16 result back (IsInf's result is bool)."""
    if ctx.elem_type(node.input[0]) != TP.FLOAT16:
        return None
    pre = []
    for i, name in enumerate(node.input):
        if name and ctx.elem_type(name) == TP.FLOAT16:
            wide = ctx.fresh(f"{name}/float32")
            pre.append(helper.make_node("Cast", [name], [wide], to=TP.FLOAT,
                                        name=f"{node.name}/{i}/to_float32"))
            node.input[i] = wide
    post = []
    if node.op_type != "IsInf":
        out = node.output[0]
        node.output[0] = ctx.fresh(f"{out}/float32")
        post.append(helper.make_node("Cast", [node.output[0]], [out], to=TP.FLOAT16,
                                     name=f"{node.name}/to_float16"))
    return [*pre, node, *post]


_INT16: dict[int, tuple[float, float]] = {TP.INT16: (-32768.0, 32767.0),
                                          TP.UINT16: (0.0, 65535.0)}


def _per_axis(ctx: Context, node: onnx.NodeProto, param: str, data: str,
              nodes: list[onnx.NodeProto]) -> str:
    """``param`` (a scale or zero point, already float) shaped to broadcast against ``data``
    along the node's ``axis`` when it is 1-D (per-axis), else as it is."""
    if param not in ctx.shapes or len(ctx.shapes[param]) != 1:
        return param
    rank = ctx.rank(node, data)
    axis = int(_attrs(node).get("axis", 1)) % rank  # type: ignore[call-overload]
    shape = ctx.add_constant(f"{node.name}/axis_shape",
                             np.array([-1 if i == axis else 1 for i in range(rank)], np.int64))
    out = ctx.fresh(f"{param}/per_axis")
    nodes.append(helper.make_node("Reshape", [param, shape], [out],
                                  name=f"{node.name}/{param}/per_axis"))
    return out


def _as_float(ctx: Context, node: onnx.NodeProto, name: str,
              nodes: list[onnx.NodeProto]) -> str:
    out = ctx.fresh(f"{name}/float32")
    nodes.append(helper.make_node("Cast", [name], [out], to=TP.FLOAT,
                                  name=f"{node.name}/{name}/to_float32"))
    return out


_INT_RANGE: dict[int, tuple[float, float]] = {**_INT16, TP.INT8: (-128.0, 127.0),
                                              TP.UINT8: (0.0, 255.0)}


def _blocked(ctx: Context, node: onnx.NodeProto, index: int, what: str,
             nodes: list[onnx.NodeProto]) -> None:
    """A blocked scale or zero point (input ``index``) repeated to the data's shape, as
    float32: a constant when it is one, else Unsqueeze, Expand, Reshape and Slice nodes."""
    block = int(_attrs(node)["block_size"])  # type: ignore[call-overload]
    rank = ctx.rank(node, node.input[0])
    axis = int(_attrs(node).get("axis", 1)) % rank  # type: ignore[call-overload]
    length = ctx.shapes[node.input[0]][axis]
    name = node.input[index]
    if name in ctx.constants:
        value = np.repeat(ctx.constants[name], block, axis=axis)
        value = np.take(value, np.arange(length), axis=axis).astype(np.float32)
        node.input[index] = ctx.add_constant(f"{node.name}/{what}_blocked", value)
        return
    if name not in ctx.shapes or len(ctx.shapes[name]) != rank:
        raise ctx.fail(node, f"needs the static shape of its {what} {name!r}")
    shape = list(ctx.shapes[name])
    wide = _as_float(ctx, node, name, nodes) if ctx.elem_type(name) != TP.FLOAT else name
    steps = [ctx.fresh(f"{name}/{step}") for step in ("split", "repeated", "merged", "blocked")]
    nodes += [
        helper.make_node("Unsqueeze", [wide, ctx.add_constant(
            f"{node.name}/{what}_axis", np.array([axis + 1], np.int64))], [steps[0]],
            name=f"{node.name}/{what}/split"),
        helper.make_node("Expand", [steps[0], ctx.add_constant(
            f"{node.name}/{what}_repeat",
            np.array([*shape[:axis + 1], block, *shape[axis + 1:]], np.int64))], [steps[1]],
            name=f"{node.name}/{what}/repeat"),
        helper.make_node("Reshape", [steps[1], ctx.add_constant(
            f"{node.name}/{what}_merge", np.array(
                [*shape[:axis], shape[axis] * block, *shape[axis + 1:]], np.int64))],
            [steps[2]], name=f"{node.name}/{what}/merge"),
        helper.make_node("Slice", [steps[2], ctx.add_constant(
            f"{node.name}/{what}_start", np.array([0], np.int64)), ctx.add_constant(
            f"{node.name}/{what}_stop", np.array([length], np.int64)), ctx.add_constant(
            f"{node.name}/{what}_axes", np.array([axis], np.int64))], [steps[3]],
            name=f"{node.name}/{what}/cut"),
    ]
    node.input[index] = steps[3]


def _quantize16(ctx: Context, node: onnx.NodeProto) -> list[onnx.NodeProto] | None:
    """QuantizeLinear/DequantizeLinear to or from int16/uint16 (21), and blocked ones
    (``block_size``, 21), which opset 17's Q/DQ lack, as float32 arithmetic:
    ``saturate(round_half_even(x / scale) + zero_point)`` and ``(x - zero_point) * scale``."""
    attrs = _attrs(node)
    blocked = int(attrs.get("block_size", 0))  # type: ignore[call-overload]
    if ctx.elem_type(node.input[1]) != TP.FLOAT:
        return None
    zero = node.input[2] if len(node.input) > 2 and node.input[2] else ""
    ints = _INT_RANGE if blocked else _INT16
    dequantize = node.op_type == "DequantizeLinear"
    target = ctx.elem_type(node.input[0]) if dequantize else ctx.elem_type(zero) if zero else (
        int(attrs.get("output_dtype", 0)) or TP.UINT8)  # type: ignore[call-overload]
    if target not in ints or (not dequantize and ctx.elem_type(node.input[0]) != TP.FLOAT):
        return None  # opset 17's own Q/DQ, or refused by name
    nodes: list[onnx.NodeProto] = []
    if blocked:
        _blocked(ctx, node, 1, "scale", nodes)
        if zero:
            _blocked(ctx, node, 2, "zero_point", nodes)
            zero = node.input[2]
    if dequantize:
        value = _as_float(ctx, node, node.input[0], nodes)
        if zero:
            centred = ctx.fresh(f"{node.output[0]}/centred")
            zero_float = zero if blocked else _per_axis(
                ctx, node, _as_float(ctx, node, zero, nodes), node.input[0], nodes)
            nodes.append(helper.make_node("Sub", [value, zero_float], [centred],
                                          name=f"{node.name}/centre"))
            value = centred
        scale = node.input[1] if blocked else _per_axis(ctx, node, node.input[1],
                                                        node.input[0], nodes)
        nodes.append(helper.make_node("Mul", [value, scale], [node.output[0]],
                                      name=f"{node.name}/scale"))
        return nodes
    assert target is not None
    lo, hi = _INT_RANGE[target]
    scale = node.input[1] if blocked else _per_axis(ctx, node, node.input[1], node.input[0],
                                                    nodes)
    steps, rounded = ctx.fresh(f"{node.output[0]}/steps"), ctx.fresh(f"{node.output[0]}/round")
    nodes += [helper.make_node("Div", [node.input[0], scale], [steps], name=f"{node.name}/div"),
              helper.make_node("Round", [steps], [rounded], name=f"{node.name}/round")]
    if zero:
        shifted = ctx.fresh(f"{node.output[0]}/shifted")
        zero_float = zero if blocked else _per_axis(
            ctx, node, _as_float(ctx, node, zero, nodes), node.input[0], nodes)
        nodes.append(helper.make_node("Add", [rounded, zero_float], [shifted],
                                      name=f"{node.name}/zero_point"))
        rounded = shifted
    clipped = ctx.fresh(f"{node.output[0]}/saturated")
    bounds = [ctx.add_constant(f"{node.name}/{end}", np.array(v, np.float32))
              for end, v in (("lo", lo), ("hi", hi))]
    nodes += [
        helper.make_node("Clip", [rounded, *bounds], [clipped], name=f"{node.name}/saturate"),
        helper.make_node("Cast", [clipped], [node.output[0]], to=target,
                         name=f"{node.name}/to_int"),
    ]
    return nodes


MAX_WRAP_LENGTH = 1 << 24  # elements of one wrap-padded axis (its Gather indices)
MAX_POOL_TAPS = 1024  # kernel elements of a pool rewritten as strided slices


def _wrap_pad(ctx: Context, node: onnx.NodeProto) -> list[onnx.NodeProto] | None:
    """Pad mode 'wrap' (19) with static pads and shape: one Gather per padded axis, of the
    indices ``(i - begin) mod size`` (negative pads crop)."""
    if _as_str(_attrs(node).get("mode", "constant")) != "wrap":
        return None
    data = node.input[0]
    if data not in ctx.shapes or node.input[1] not in ctx.constants or (
            len(node.input) > 3 and node.input[3] and node.input[3] not in ctx.constants):
        return None  # the Pad adapter refuses it by name
    shape = ctx.shapes[data]
    rank = len(shape)
    pads = ctx.constants[node.input[1]].reshape(-1).astype(np.int64)
    axes = (ctx.constants[node.input[3]].reshape(-1).astype(np.int64)
            if len(node.input) > 3 and node.input[3] else np.arange(rank))
    begin, end = np.zeros(rank, np.int64), np.zeros(rank, np.int64)
    for i, given in enumerate(axes):
        begin[int(given) % rank], end[int(given) % rank] = pads[i], pads[i + len(axes)]
    padded = [a for a in range(rank) if begin[a] or end[a]]
    if not padded:
        return [helper.make_node("Identity", [data], [node.output[0]], name=node.name)]
    nodes, current = [], data
    for k, axis in enumerate(padded):
        size = shape[axis] + int(begin[axis]) + int(end[axis])
        if size < 0 or shape[axis] == 0 or size > MAX_WRAP_LENGTH:
            raise ctx.fail(node, f"pads axis {axis} of size {shape[axis]} to {size} "
                           f"(wrap pads up to {MAX_WRAP_LENGTH} elements per axis)")
        index = ctx.add_constant(f"{node.name}/wrap{axis}",
                                 (np.arange(size) - begin[axis]) % shape[axis])
        out = node.output[0] if k == len(padded) - 1 else ctx.fresh(f"{data}/wrap{axis}")
        nodes.append(helper.make_node("Gather", [current, index], [out], axis=axis,
                                      name=f"{node.name}/wrap{axis}"))
        current = out
    return nodes


def _pool_by_slices(ctx: Context, node: onnx.NodeProto) -> list[onnx.NodeProto] | None:
    """AveragePool ``dilations`` (19), and AveragePool/MaxPool whose last ``ceil_mode`` window
    would start in the end padding (dropped since opset 19, kept by 17), as opset-17 ops: pad,
    one strided Slice per kernel tap, then Max, or Sum and Div by the constant count of taps
    each window averages (taps in the explicit pads count when ``count_include_pad``; taps past
    them, from ``ceil_mode``, never)."""
    attrs = _attrs(node)
    data = node.input[0]
    average = node.op_type == "AveragePool"
    if not average and (len(node.output) > 1 and node.output[1]):
        return None  # MaxPool's indices
    spatial = len(ctx.shapes[data]) - 2 if data in ctx.shapes else 0
    dilations = [int(d) for d in attrs.get("dilations", [1] * spatial)]  # type: ignore[attr-defined]
    if (all(d == 1 for d in dilations) or not average) and not _ceil_drops_a_window(
            ctx, attrs, data, dilations):
        return None
    if _as_str(attrs.get("auto_pad", "NOTSET")) not in ("NOTSET", "VALID"):
        raise ctx.fail(node, "uses dilations with auto_pad, which opset 17 lacks",
                       hint="export the model with explicit pads")
    data = node.input[0]
    if data not in ctx.shapes:
        raise ctx.fail(node, f"needs the static shape of {data!r} to pool with dilations")
    if not average and ctx.elem_type(data) not in (TP.FLOAT, TP.FLOAT16):
        return None
    shape = ctx.shapes[data]
    kernel = [int(k) for k in attrs["kernel_shape"]]  # type: ignore[attr-defined]
    if int(np.prod(kernel, dtype=np.float64)) > MAX_POOL_TAPS:
        raise ctx.fail(node, f"has a {kernel} kernel: over {MAX_POOL_TAPS} taps to rewrite "
                       "for opset 17")
    strides = [int(v) for v in attrs.get("strides", [1] * spatial)]  # type: ignore[attr-defined]
    pads = ([int(v) for v in attrs.get("pads", [0] * 2 * spatial)]  # type: ignore[attr-defined]
            if _as_str(attrs.get("auto_pad", "NOTSET")) == "NOTSET" else [0] * 2 * spatial)
    ceil_mode = bool(attrs.get("ceil_mode", 0))
    include_pad = bool(attrs.get("count_include_pad", 0))
    outs, extra, counts = [], [], []
    for i in range(spatial):
        n, b, e, s, d, k = shape[i + 2], pads[i], pads[i + spatial], strides[i], \
            dilations[i], kernel[i]
        span = (k - 1) * d + 1
        length = (n + b + e - span) / s + 1
        out = int(np.ceil(length)) if ceil_mode else int(np.floor(length))
        if ceil_mode and (out - 1) * s >= n + b:
            out -= 1
        if out < 1:
            raise ctx.fail(node, f"pools a window of {span} over {n} + {b + e} padding")
        outs.append(out)
        extra.append(max(e, (out - 1) * s + span - n - b))
        first, last = (-b, n + e) if include_pad else (0, n)
        taps = np.arange(out)[:, None] * s - b + np.arange(k)[None, :] * d
        counts.append(((taps >= first) & (taps < last)).sum(axis=1))
    count = counts[0].astype(np.float32)
    for c in counts[1:]:
        count = np.multiply.outer(count, c).astype(np.float32)
    if (count == 0).any():
        raise ctx.fail(node, "has a window with no input element to pool")
    # onnx's shape inference keeps the window opset 19 drops (ORT and onnx's reference
    # evaluator drop it): the output's recorded shape is set to the one computed here.
    for value in [*ctx.graph.value_info, *ctx.graph.output]:
        if value.name == node.output[0] and value.type.tensor_type.HasField("shape"):
            for dim, size in zip(value.type.tensor_type.shape.dim[2:], outs, strict=False):
                dim.Clear()
                dim.dim_value = size
    ctx.shapes[node.output[0]] = (*shape[:2], *outs)
    nodes: list[onnx.NodeProto] = []
    source = data
    if any(pads[:spatial]) or any(extra):
        source = ctx.fresh(f"{data}/padded")
        full = np.array([0, 0, *pads[:spatial], 0, 0, *extra], np.int64)
        pad_inputs = [data, ctx.add_constant(f"{node.name}/pads", full)]
        if not average:  # padding never wins a max
            pad_inputs.append(ctx.add_constant(f"{node.name}/lowest", np.array(
                -np.inf, np.float16 if ctx.elem_type(data) == TP.FLOAT16 else np.float32)))
        nodes.append(helper.make_node("Pad", pad_inputs, [source], mode="constant",
                                      name=f"{node.name}/pad"))
    axes = ctx.add_constant(f"{node.name}/axes", np.arange(2, 2 + spatial, dtype=np.int64))
    steps = ctx.add_constant(f"{node.name}/steps", np.array(strides, np.int64))
    tapped = []
    for tap in np.ndindex(*kernel):
        start = np.array([t * d for t, d in zip(tap, dilations, strict=True)], np.int64)
        stop = start + (np.array(outs) - 1) * np.array(strides) + 1
        tap_out = ctx.fresh(f"{node.output[0]}/tap{'_'.join(map(str, tap))}")
        nodes.append(helper.make_node(
            "Slice", [source, ctx.add_constant(f"{node.name}/start", start),
                      ctx.add_constant(f"{node.name}/stop", stop.astype(np.int64)), axes, steps],
            [tap_out], name=f"{node.name}/tap{'_'.join(map(str, tap))}"))
        tapped.append(tap_out)
    if not average:
        return [*nodes, helper.make_node("Max", tapped, [node.output[0]], name=f"{node.name}/max")]
    total = ctx.fresh(f"{node.output[0]}/sum")
    nodes += [helper.make_node("Sum", tapped, [total], name=f"{node.name}/sum"),
              helper.make_node("Div", [total, ctx.add_constant(f"{node.name}/count", count)],
                               [node.output[0]], name=f"{node.name}/mean")]
    return nodes


def _ceil_drops_a_window(ctx: Context, attrs: dict[str, object], data: str,
                         dilations: list[int]) -> bool:
    """Whether opset 19+'s ceil_mode rule (a window may not start in the end padding) gives
    a smaller output than opset 17 computes."""
    if ctx.opset < 19 or not int(attrs.get("ceil_mode", 0)) or data not in ctx.shapes or (  # type: ignore[call-overload]
            _as_str(attrs.get("auto_pad", "NOTSET")) != "NOTSET"):
        return False
    shape = ctx.shapes[data]
    spatial = len(shape) - 2
    kernel = [int(k) for k in attrs["kernel_shape"]]  # type: ignore[attr-defined]
    strides = [int(v) for v in attrs.get("strides", [1] * spatial)]  # type: ignore[attr-defined]
    pads = [int(v) for v in attrs.get("pads", [0] * 2 * spatial)]  # type: ignore[attr-defined]
    for i in range(spatial):
        n, b, s = shape[i + 2], pads[i], strides[i]
        span = (kernel[i] - 1) * dilations[i] + 1
        out = int(np.ceil((n + b + pads[i + spatial] - span) / s + 1))
        if (out - 1) * s >= n + b:
            return True
    return False


def _space_to_depth_crd(ctx: Context, node: onnx.NodeProto) -> list[onnx.NodeProto] | None:
    """SpaceToDepth ``mode = "CRD"`` (new after 17; 17 has DCR only) as Reshape, Transpose,
    Reshape."""
    if _as_str(_attrs(node).get("mode", "DCR")) != "CRD":
        return None
    data = node.input[0]
    if data not in ctx.shapes or len(ctx.shapes[data]) != 4:
        raise ctx.fail(node, f"needs the static 4-D shape of {data!r} for mode CRD")
    n, c, h, w = ctx.shapes[data]
    b = int(_attrs(node)["blocksize"])  # type: ignore[call-overload]
    if h % b or w % b:
        raise ctx.fail(node, f"has blocksize {b}, which does not divide {h}x{w}")
    split, moved = ctx.fresh(f"{data}/blocks"), ctx.fresh(f"{data}/blocks_moved")
    return [
        helper.make_node("Reshape", [data, ctx.add_constant(
            f"{node.name}/blocks", np.array([n, c, h // b, b, w // b, b], np.int64))], [split],
            name=f"{node.name}/split"),
        helper.make_node("Transpose", [split], [moved], perm=[0, 1, 3, 5, 2, 4],
                         name=f"{node.name}/move"),
        helper.make_node("Reshape", [moved, ctx.add_constant(
            f"{node.name}/depth", np.array([n, c * b * b, h // b, w // b], np.int64))],
            [node.output[0]], name=f"{node.name}/merge"),
    ]


MAX_RESIZE_MATRIX = 1 << 22  # elements of one interpolation matrix (16 MiB of float32)


def _interpolation_matrix(ctx: Context, node: onnx.NodeProto, axis: int, rank: int, n: int,
                          sizes: np.ndarray | None, scales: np.ndarray | None) -> np.ndarray:
    """The node's Resize along ``axis`` (one of the last two) as a matrix: onnx's reference
    Resize of an n x n identity, resized along that axis only. ``A_h`` [out, n] for the rows
    axis, ``A_w^T`` [n, out] for the last one."""
    from onnx.reference import ReferenceEvaluator

    eye = np.eye(n, dtype=np.float32).reshape([1] * (rank - 2) + [n, n])
    if sizes is not None:
        params = np.array([1] * (rank - 2) + [n, n], np.int64)
        params[axis] = int(sizes[axis])
        inputs, kind = ["x", "", "", "p"], TP.INT64
    else:
        assert scales is not None
        params = np.ones(rank, np.float32)
        params[axis] = np.float32(scales[axis])
        inputs, kind = ["x", "", "p"], TP.FLOAT
    size = int(params[axis]) if sizes is not None else int(np.floor(n * params[axis]))
    if max(size, n) * n > MAX_RESIZE_MATRIX:
        raise ctx.fail(node, f"resizes axis {axis} from {n} to {size}: its interpolation "
                       f"matrix would exceed {MAX_RESIZE_MATRIX} elements")
    probe = helper.make_node("Resize", inputs, ["y"],
                             **{a.name: helper.get_attribute_value(a) for a in node.attribute})
    graph = helper.make_graph([probe], "probe", [
        helper.make_tensor_value_info("x", TP.FLOAT, list(eye.shape)),
        helper.make_tensor_value_info("p", kind, [rank])],
        [helper.make_tensor_value_info("y", TP.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ctx.opset)])
    outputs: Any = ReferenceEvaluator(model).run(None, {"x": eye, "p": params})
    result = np.asarray(outputs[0])
    return result.reshape(result.shape[-2], result.shape[-1]).astype(np.float32)


def _resize_as_matmuls(ctx: Context, node: onnx.NodeProto) -> list[onnx.NodeProto] | None:
    """Resize with ``antialias=1`` or ``half_pixel_symmetric`` (18, 19), which opset 17 and the
    runtime lack, on the last two axes of a static shape: every Resize mode but
    tf_crop_and_resize is linear in its input and separable, so it is ``A_h @ X @ A_w^T``
    with constant interpolation matrices. Each matrix is onnx's reference Resize of an
    identity matrix along that axis, the node's own attributes and scale (or size) kept."""
    attrs = _attrs(node)
    mode = _as_str(attrs.get("coordinate_transformation_mode", "half_pixel"))
    if not int(attrs.get("antialias", 0)) and mode != "half_pixel_symmetric":  # type: ignore[call-overload]
        return None
    data = node.input[0]
    inputs = list(node.input) + [""] * (4 - len(node.input))
    if (mode == "tf_crop_and_resize" or data not in ctx.shapes or "axes" in attrs
            or ctx.elem_type(data) != TP.FLOAT
            or _as_str(attrs.get("keep_aspect_ratio_policy", "stretch")) != "stretch"
            or any(name and name not in ctx.constants for name in inputs[1:])):
        return None  # the Resize adapter refuses it by name
    shape = ctx.shapes[data]
    rank = len(shape)
    sizes = ctx.constants[inputs[3]].reshape(-1) if inputs[3] else None
    scales = ctx.constants[inputs[2]].reshape(-1) if inputs[2] and sizes is None else None
    if rank < 2 or (sizes is None and scales is None):
        return None
    changed = [a for a in range(rank) if (sizes[a] != shape[a] if sizes is not None
                                          else scales[a] != 1)]  # type: ignore[index]
    if any(a < rank - 2 for a in changed):
        return None
    matrices = {axis: _interpolation_matrix(ctx, node, axis, rank, shape[axis],
                                            sizes, scales) for axis in changed}
    nodes, current = [], data
    for k, axis in enumerate(sorted(changed)):
        out = node.output[0] if k == len(changed) - 1 else ctx.fresh(f"{data}/resized{axis}")
        if axis == rank - 1:  # X @ A_w^T
            pair = [current, ctx.add_constant(f"{node.name}/columns", matrices[axis])]
        else:  # A_h @ X
            pair = [ctx.add_constant(f"{node.name}/rows", matrices[axis]), current]
        nodes.append(helper.make_node("MatMul", pair, [out], name=f"{node.name}/axis{axis}"))
        current = out
    if not nodes:
        return [helper.make_node("Identity", [data], [node.output[0]], name=node.name)]
    return nodes


MAX_SCATTER_PAIRS = 1 << 22  # updates x data elements compared by a min/max scatter


def _scatter_min_max(ctx: Context, node: onnx.NodeProto) -> list[onnx.NodeProto] | None:
    """ScatterElements/ScatterND reduction 'min'/'max' (18), which opset 17 lacks, on static
    shapes: each update's flat target in the data (from the indices, at run time), a one-hot
    [updates, data] comparison that keeps each update in its target's column (the other cells
    hold the dtype's identity), ReduceMax/ReduceMin over the updates, then Max/Min with the
    data. Refused past ``MAX_SCATTER_PAIRS`` cells."""
    reduction = _as_str(_attrs(node).get("reduction", "none"))
    data, indices, updates = node.input[0], node.input[1], node.input[2]
    if reduction not in ("max", "min") or not all(n in ctx.shapes for n in node.input[:3]):
        return None  # the Scatter adapter refuses min/max by name
    shape, index_shape = ctx.shapes[data], ctx.shapes[indices]
    total = int(np.prod(shape))
    count = int(np.prod(ctx.shapes[updates]))
    dtype = helper.tensor_dtype_to_np_dtype(ctx.elem_type(data) or TP.FLOAT)
    if count * total > MAX_SCATTER_PAIRS or dtype.kind not in "fiu":
        return None
    strides = np.array([int(np.prod(shape[d + 1:])) for d in range(len(shape))], np.int64)
    name, out = node.name, node.output[0]
    nodes: list[onnx.NodeProto] = []

    def op(kind: str, inputs: list[str], **attrs: Any) -> str:
        result = ctx.fresh(f"{out}/{kind.lower()}")
        nodes.append(helper.make_node(kind, inputs, [result], name=f"{name}/{len(nodes)}",
                                      **attrs))
        return result

    def const(what: str, value: np.ndarray) -> str:
        return ctx.add_constant(f"{name}/{what}", value)

    if node.op_type == "ScatterElements":
        axis = int(_attrs(node).get("axis", 0)) % len(shape)  # type: ignore[call-overload]
        grid = np.indices(index_shape, dtype=np.int64)
        base = sum(grid[d] * strides[d] for d in range(len(shape)) if d != axis)
        wrapped = op("Mod", [indices, const("dim", np.array(shape[axis], np.int64))])
        along = op("Mul", [wrapped, const("stride", np.array(strides[axis], np.int64))])
        targets = op("Add", [along, const("base", np.asarray(base, np.int64))])
    else:
        k = index_shape[-1]
        wrapped = op("Mod", [indices, const("dims", np.array(shape[:k], np.int64))])
        offsets = op("Mul", [wrapped, const("strides", strides[:k])])
        first = op("ReduceSum", [offsets, const("last", np.array([-1], np.int64))], keepdims=1)
        targets = op("Add", [first, const("slice", np.arange(int(np.prod(shape[k:])),
                                                               dtype=np.int64))])
    flat = const("flat", np.array([-1, 1], np.int64))
    column = op("Reshape", [targets, flat])  # [updates, 1]
    values = op("Reshape", [updates, flat])
    hit = op("Equal", [column, const("positions", np.arange(total, dtype=np.int64)[None])])
    info = np.finfo(dtype) if dtype.kind == "f" else np.iinfo(dtype)
    identity = np.array(-np.inf if dtype.kind == "f" and reduction == "max" else np.inf
                        if dtype.kind == "f" else info.min if reduction == "max" else info.max,
                        dtype)
    cells = op("Where", [hit, values, const("identity", identity)])  # [updates, data]
    best = op("ReduceMax" if reduction == "max" else "ReduceMin", [cells], axes=[0],
              keepdims=0)
    merged = op("Max" if reduction == "max" else "Min",
                [op("Reshape", [data, const("all", np.array([-1], np.int64))]), best])
    nodes.append(helper.make_node("Reshape", [merged, const("shape", np.array(shape, np.int64))],
                                  [out], name=f"{name}/{len(nodes)}"))
    return nodes


REWRITES: dict[str, Callable[[Context, onnx.NodeProto], list[onnx.NodeProto] | None]] = {
    "Celu": _float16_via_float32, "IsInf": _float16_via_float32, "Range": _float16_via_float32,
    "QuantizeLinear": _quantize16, "DequantizeLinear": _quantize16, "Pad": _wrap_pad,
    "AveragePool": _pool_by_slices, "MaxPool": _pool_by_slices,
    "SpaceToDepth": _space_to_depth_crd, "Resize": _resize_as_matmuls,
    "ScatterElements": _scatter_min_max, "ScatterND": _scatter_min_max,
}


def rewrite(ctx: Context, node: onnx.NodeProto) -> list[onnx.NodeProto] | None:
    """The opset-17 nodes that replace ``node``, or None when no rewrite applies."""
    fn = REWRITES.get(node.op_type)
    if fn is None:
        return None
    if not node.name:  # the new nodes' names derive from it and must be unique
        node.name = f"{node.output[0]}/{node.op_type}"
    return fn(ctx, node)

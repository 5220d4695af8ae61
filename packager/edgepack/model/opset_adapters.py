# SPDX-License-Identifier: Apache-2.0
"""The per-op adapters of the opset down-conversion (``opset.downgrade``): each edits one node
whose signature changed after opset 17 into its opset-17 form, or refuses it by name.

An adapter reads constants and static shapes from the ``Context`` (built after shape
computations are folded) and may add constant tensors; ``bool_reduce`` is the one rewrite that
adds nodes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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
    """Pad (18): optional ``axes`` input; (19): ``wrap`` mode."""
    if _as_str(_attrs(node).get("mode", "constant")) == "wrap":
        raise ctx.fail(node, "uses mode 'wrap', which opset 17 and the runtime lack")
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

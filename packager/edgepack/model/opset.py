# SPDX-License-Identifier: Apache-2.0
"""Bring a model of ai.onnx opset 11..23 to the canonical opset 17 the runtime implements.

Older models go up with onnx's version converter. Newer ones come down by edgepack's own
rewriting, because onnx has no adapters for most down-conversions:
- an op added after 17 (Gelu, Mish, GroupNormalization, RMSNormalization, Attention, ...) is
  replaced by its ONNX function body, whose ops are then converted in turn;
- an op whose signature changed after 17 gets a small adapter (Reduce* and Pad ``axes`` inputs,
  Split ``num_outputs``, Resize ``axes``/``keep_aspect_ratio_policy``, AveragePool
  ``dilations``, GridSample mode names, Cast ``saturate``);
- any other attribute or input that opset 17 lacks is dropped when it holds its default and
  refused otherwise, so a model never silently changes meaning.
Adapters read constants and static shapes, so shape computations are folded first. Every
refusal is a ``ModelError`` naming the model file and the node.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import onnx.defs
from onnx import helper, numpy_helper, version_converter

from edgepack.errors import ModelError
from edgepack.model.diagnostics import one_line
from edgepack.model.optimize import optimize, shape_skeleton

CANONICAL_OPSET = 17
ACCEPTED_OPSETS = range(11, 24)  # ai.onnx 11..23
STANDARD_DOMAINS = ("", "ai.onnx")

_REDUCE_AXES_INPUT = {"ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
                      "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"}


@dataclass
class _Context:
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


def _reduce(ctx: _Context, node: onnx.NodeProto) -> None:
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


def _split(ctx: _Context, node: onnx.NodeProto) -> None:
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


def _pad(ctx: _Context, node: onnx.NodeProto) -> None:
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


def _resize(ctx: _Context, node: onnx.NodeProto) -> None:
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


def _average_pool(ctx: _Context, node: onnx.NodeProto) -> None:
    """AveragePool (19): ``dilations``."""
    dilations = _attrs(node).get("dilations")
    if dilations is not None and any(int(d) != 1 for d in dilations):  # type: ignore[attr-defined]
        raise ctx.fail(node, f"uses dilations {list(dilations)}, which opset 17 lacks")  # type: ignore[call-overload]
    _drop_attr(node, "dilations")


def _grid_sample(ctx: _Context, node: onnx.NodeProto) -> None:
    """GridSample (20): modes renamed and N-D; 16 is 2-D with 'bilinear'/'bicubic'."""
    if ctx.rank(node, node.input[0]) != 4:
        raise ctx.fail(node, "samples a non-4-D tensor, which opset 17 lacks")
    mode = _as_str(_attrs(node).get("mode", "linear"))
    _set_attr(node, "mode", {"linear": "bilinear", "cubic": "bicubic"}.get(mode, mode))


def _cast(ctx: _Context, node: onnx.NodeProto) -> None:
    """Cast/CastLike (19): ``saturate`` only matters for float8 targets, which 17 lacks."""
    _drop_attr(node, "saturate")


def _scatter(ctx: _Context, node: onnx.NodeProto) -> None:
    """ScatterND/ScatterElements (18): reductions 'max' and 'min'."""
    reduction = _as_str(_attrs(node).get("reduction", "none"))
    if reduction in ("max", "min"):
        raise ctx.fail(node, f"uses reduction {reduction!r}, which opset 17 lacks")


_ADAPTERS: dict[str, Callable[[_Context, onnx.NodeProto], None]] = {
    **dict.fromkeys(_REDUCE_AXES_INPUT, _reduce),
    "Split": _split, "Pad": _pad, "Resize": _resize, "AveragePool": _average_pool,
    "GridSample": _grid_sample, "Cast": _cast, "CastLike": _cast, "ScatterND": _scatter,
    "ScatterElements": _scatter,
}


def _function_body(ctx: _Context, node: onnx.NodeProto, schema: Any,
                   opset: int) -> onnx.FunctionProto | None:
    """The op's ONNX function body written for the newest opset up to ``opset`` (a body is
    kept per opset where its ops changed, e.g. Gelu's at 20 serves a model at 21)."""
    if schema.has_function:
        versions = [v for v in schema.function_opset_versions if v <= opset]
        if not versions:
            return None
        body = schema.get_function_with_opset_version(max(versions))
    elif schema.has_context_dependent_function:
        versions = [v for v in schema.context_dependent_function_opset_versions if v <= opset]
        if not versions:
            return None
        types = []
        for name in node.input:
            if name and name not in ctx.types:
                raise ctx.fail(node, f"needs the type of {name!r} to expand, which is unknown")
            types.append(ctx.types[name].SerializeToString() if name else b"")
        body = schema.get_context_dependent_function_with_opset_version(
            max(versions), node.SerializeToString(), types)
    else:
        return None
    function = onnx.FunctionProto.FromString(body)
    return function if len(function.node) else None


def _inline(node: onnx.NodeProto, body: onnx.FunctionProto) -> list[onnx.NodeProto]:
    """The body's nodes with formal parameters bound to the node's tensors and attributes,
    every internal tensor and node named under the node's name."""
    rename = {formal: actual for formal, actual in zip(body.input, node.input, strict=False)}
    rename.update(zip(body.output, node.output, strict=False))
    attrs = {a.name: a for a in node.attribute}
    nodes = []
    for i, inner in enumerate(body.node):
        new = onnx.NodeProto()
        new.CopyFrom(inner)
        new.name = f"{node.name}/{inner.name or inner.op_type}_{i}"
        new.input[:] = [rename.get(n, f"{node.name}/{n}") if n else "" for n in inner.input]
        new.output[:] = [rename.get(n, f"{node.name}/{n}") if n else "" for n in inner.output]
        del new.attribute[:]
        for a in inner.attribute:
            if a.ref_attr_name:
                if a.ref_attr_name in attrs:
                    bound = onnx.AttributeProto()
                    bound.CopyFrom(attrs[a.ref_attr_name])
                    bound.name = a.name
                    new.attribute.append(bound)
            else:
                new.attribute.append(a)
        nodes.append(new)
    return nodes


def _newer_op(node: onnx.NodeProto, opset: int) -> tuple[onnx.defs.OpSchema, bool]:
    """The node's schema at ``opset`` and whether opset 17 has the op at all."""
    schema = onnx.defs.get_schema(node.op_type, opset, "")
    try:
        onnx.defs.get_schema(node.op_type, CANONICAL_OPSET, "")
    except onnx.defs.SchemaError:
        return schema, False
    return schema, True


def _check_known(ctx: _Context, node: onnx.NodeProto, opset: int) -> None:
    try:
        onnx.defs.get_schema(node.op_type, opset, "")
    except onnx.defs.SchemaError:
        raise ctx.fail(node, f"is not an ai.onnx opset-{opset} operator") from None


def _expand_once(ctx: _Context, opset: int) -> int:
    """Replace each op that opset 17 lacks by its function body; returns how many."""
    nodes: list[onnx.NodeProto] = []
    expanded = 0
    for node in ctx.graph.node:
        _check_known(ctx, node, opset)
        schema, in_17 = _newer_op(node, opset)
        if in_17 or schema.since_version <= CANONICAL_OPSET:
            nodes.append(node)
            continue
        try:
            body = _function_body(ctx, node, schema, opset)
        except ModelError:
            raise
        except Exception as exc:  # onnx's C++ function builders reject odd attributes
            raise ctx.fail(node, f"cannot be expanded into opset-{CANONICAL_OPSET} ops "
                           f"({one_line(exc)})",
                           hint="replace it in the model or cut the model before it") from exc
        if body is None:
            raise ctx.fail(node, f"was added in opset {schema.since_version}, and opset "
                           f"{CANONICAL_OPSET} has no equivalent edgepack can convert it to",
                           hint="replace it in the model or cut the model before it")
        nodes.extend(_inline(node, body))
        expanded += 1
    del ctx.graph.node[:]
    ctx.graph.node.extend(nodes)
    return expanded


def expand_functions(path_str: str, model: onnx.ModelProto, opset: int) -> onnx.ModelProto:
    """A copy of ``model`` whose ops added after opset 17 are replaced by their ONNX function
    bodies (at the model's own opset: later passes fold and convert them)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    for _ in range(8):  # bodies may call other new ops (each round needs fresh types)
        ctx = _context(path_str, out)
        ctx.graph = out.graph
        if not _expand_once(ctx, opset):
            break
    return out


def _convert_node(ctx: _Context, node: onnx.NodeProto, opset: int) -> None:
    """Edit the node in place into its opset-17 form, or refuse it."""
    _check_known(ctx, node, opset)
    schema, in_17 = _newer_op(node, opset)
    if schema.since_version <= CANONICAL_OPSET:
        return
    if not in_17:
        raise ctx.fail(node, f"was added in opset {schema.since_version}, and opset "
                       f"{CANONICAL_OPSET} has no equivalent edgepack can convert it to",
                       hint="replace it in the model or cut the model before it")
    old = onnx.defs.get_schema(node.op_type, CANONICAL_OPSET, "")
    adapter = _ADAPTERS.get(node.op_type)
    if adapter is not None:
        try:
            adapter(ctx, node)
        except (IndexError, ValueError, TypeError, ZeroDivisionError) as exc:
            raise ctx.fail(node, f"has inputs that do not fit its opset-{opset} "
                           f"signature ({one_line(exc)})") from exc
    if node.op_type != old.name:  # an adapter turned it into another op
        return
    for attr in list(node.attribute):
        if attr.name in old.attributes:
            continue
        default = schema.attributes[attr.name].default_value if (
            attr.name in schema.attributes) else None
        if default is not None and default.type and (
            helper.get_attribute_value(default) == helper.get_attribute_value(attr)
        ):
            node.attribute.remove(attr)
            continue
        raise ctx.fail(node, f"sets attribute {attr.name}="
                       f"{helper.get_attribute_value(attr)!r}, which opset "
                       f"{CANONICAL_OPSET} lacks")
    max_inputs = old.max_input
    if any(node.input[max_inputs:]):
        raise ctx.fail(node, f"has {len(node.input)} inputs; opset {CANONICAL_OPSET} "
                       f"takes at most {max_inputs}")
    del node.input[max_inputs:]


def _context(path_str: str, model: onnx.ModelProto) -> _Context:
    try:  # on the weight-less skeleton: adapters need shapes and small constants only
        inferred = onnx.shape_inference.infer_shapes(shape_skeleton(model), data_prop=True)
    except Exception as exc:
        raise ModelError(f"{path_str}: shape inference failed: {one_line(exc)}") from exc
    g = inferred.graph
    constants = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    for node in g.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    shapes: dict[str, tuple[int, ...]] = {}
    types: dict[str, onnx.TypeProto] = {}
    for value in [*g.input, *g.value_info, *g.output]:
        types[value.name] = value.type
        t = value.type.tensor_type
        if t.HasField("shape") and all(d.HasField("dim_value") for d in t.shape.dim):
            shapes[value.name] = tuple(int(d.dim_value) for d in t.shape.dim)
    for name, array in constants.items():
        shapes[name] = tuple(array.shape)
        types.setdefault(name, helper.make_tensor_type_proto(
            helper.np_dtype_to_tensor_dtype(array.dtype), array.shape))
    return _Context(path_str, model.graph, constants, shapes, types)


def _bool_reduce(ctx: _Context, node: onnx.NodeProto) -> list[onnx.NodeProto]:
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


def downgrade(path_str: str, model: onnx.ModelProto, opset: int) -> onnx.ModelProto:
    """A copy of ``model`` (ai.onnx ``opset`` > 17, functions expanded and shape chains
    folded) in opset-17 form."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    ctx = _context(path_str, out)
    ctx.graph = out.graph
    nodes: list[onnx.NodeProto] = []
    for node in out.graph.node:
        _convert_node(ctx, node, opset)
        nodes.extend(_bool_reduce(ctx, node))
    del out.graph.node[:]
    out.graph.node.extend(nodes)
    for imp in out.opset_import:
        if imp.domain in STANDARD_DOMAINS:
            imp.version = CANONICAL_OPSET
    return out


def upgrade(path_str: str, model: onnx.ModelProto, opset: int) -> onnx.ModelProto:
    """``model`` (ai.onnx ``opset`` < 17) converted up with onnx's version converter."""
    try:
        return version_converter.convert_version(model, CANONICAL_OPSET)
    except Exception as exc:
        raise ModelError(
            f"{path_str}: cannot convert from opset {opset} to {CANONICAL_OPSET}: "
            f"{one_line(exc)}",
            hint=f"re-export the model with opset {CANONICAL_OPSET}",
        ) from exc


def to_canonical(path_str: str, model: onnx.ModelProto, opset: int) -> onnx.ModelProto:
    """``model`` (ai.onnx ``opset``, input shapes fixed) in opset-17 form, the way ingest
    converts it: newer models have their new ops expanded and their shape computations folded
    before the down-conversion, which reads constants and static shapes; the result passes the
    ONNX checker at opset 17."""
    if opset < CANONICAL_OPSET:
        return upgrade(path_str, model, opset)
    if opset == CANONICAL_OPSET:
        return model
    expanded = expand_functions(path_str, model, opset)
    try:
        folded, _ = optimize(expanded)
    except Exception as exc:  # onnx's shape inference or evaluator on a model it rejects
        raise ModelError(f"{path_str}: folding the graph at opset {opset} failed: "
                         f"{one_line(exc)}",
                         hint=f"re-export the model with opset {CANONICAL_OPSET}") from exc
    converted = downgrade(path_str, folded, opset)
    try:
        onnx.checker.check_model(converted, full_check=True)
    except Exception as exc:
        raise ModelError(f"{path_str}: the model is not valid ONNX once converted from opset "
                         f"{opset} to {CANONICAL_OPSET}: {one_line(exc)}",
                         hint=f"re-export the model with opset {CANONICAL_OPSET}") from exc
    return converted

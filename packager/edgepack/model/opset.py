# SPDX-License-Identifier: Apache-2.0
"""Bring a model of ai.onnx opset 11..23 to the canonical opset 17 the runtime implements.

Older models go up with onnx's version converter. Newer ones come down by edgepack's own
rewriting, because onnx has no adapters for most down-conversions:
- an op added after 17 (Gelu, Mish, GroupNormalization, RMSNormalization, Attention, ...) is
  replaced by its ONNX function body, whose ops are then converted in turn;
- an op whose signature changed after 17 gets a small adapter in ``opset_adapters`` (Reduce*
  and Pad ``axes`` inputs, Split ``num_outputs``, Resize ``axes``/``keep_aspect_ratio_policy``,
  AveragePool ``dilations``, GridSample mode names, Cast ``saturate``, bool
  ReduceMax/ReduceMin);
- any other attribute or input that opset 17 lacks is dropped when it holds its default and
  refused otherwise, so a model never silently changes meaning.
Adapters read constants and static shapes, so shape computations are folded first
(``to_canonical`` is the whole sequence, as ingest runs it). Every refusal is a ``ModelError``
naming the model file and the node.
"""

from __future__ import annotations

from typing import Any

import onnx
import onnx.defs
from onnx import helper, numpy_helper, version_converter

from edgepack.errors import ModelError
from edgepack.model.diagnostics import one_line
from edgepack.model.opset_adapters import ADAPTERS, Context, bool_reduce, rewrite
from edgepack.model.opset_adapters import CANONICAL_OPSET as CANONICAL_OPSET
from edgepack.model.optimize import optimize, shape_skeleton

ACCEPTED_OPSETS = range(11, 24)  # ai.onnx 11..23
STANDARD_DOMAINS = ("", "ai.onnx")


def _function_body(ctx: Context, node: onnx.NodeProto, schema: Any,
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


def _check_known(ctx: Context, node: onnx.NodeProto, opset: int) -> None:
    try:
        onnx.defs.get_schema(node.op_type, opset, "")
    except onnx.defs.SchemaError:
        raise ctx.fail(node, f"is not an ai.onnx opset-{opset} operator") from None


def _expand_once(ctx: Context, opset: int) -> int:
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
                           hint="replace it in the model, or cut the model before it with "
                           "`outputs = [...]` in its [[models]] entry") from exc
        if body is None:
            raise ctx.fail(node, f"was added in opset {schema.since_version}, and opset "
                           f"{CANONICAL_OPSET} has no equivalent edgepack can convert it to",
                           hint="replace it in the model, or cut the model before it with "
                           "`outputs = [...]` in its [[models]] entry")
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


def _convert_node(ctx: Context, node: onnx.NodeProto, opset: int) -> None:
    """Edit the node in place into its opset-17 form, or refuse it."""
    _check_known(ctx, node, opset)
    schema, in_17 = _newer_op(node, opset)
    if schema.since_version <= CANONICAL_OPSET:
        return
    if not in_17:
        raise ctx.fail(node, f"was added in opset {schema.since_version}, and opset "
                       f"{CANONICAL_OPSET} has no equivalent edgepack can convert it to",
                       hint="replace it in the model, or cut the model before it with "
                       "`outputs = [...]` in its [[models]] entry")
    old = onnx.defs.get_schema(node.op_type, CANONICAL_OPSET, "")
    adapter = ADAPTERS.get(node.op_type)
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


def _context(path_str: str, model: onnx.ModelProto) -> Context:
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
    return Context(path_str, model.graph, constants, shapes, types)


def downgrade(path_str: str, model: onnx.ModelProto, opset: int) -> onnx.ModelProto:
    """A copy of ``model`` (ai.onnx ``opset`` > 17, functions expanded and shape chains
    folded) in opset-17 form."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    ctx = _context(path_str, out)
    ctx.graph = out.graph
    ctx.opset = opset
    nodes: list[onnx.NodeProto] = []
    for node in list(out.graph.node):
        replaced = rewrite(ctx, node)
        if replaced is None:
            _convert_node(ctx, node, opset)
            replaced = bool_reduce(ctx, node)
        nodes.extend(replaced)
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

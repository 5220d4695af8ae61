# SPDX-License-Identifier: Apache-2.0
"""Lowering: an ONNX stage graph (opset 17, static shapes) to the device graph format.

Steps: refuse unsupported ops and opsets; fold constants (Constant nodes, Shape of static
tensors, nodes whose inputs are all constant, evaluated with onnx's reference evaluator); infer
static shapes (data-dependent outputs enter at their bound, see docs/device-graph-format.md);
turn int8 element-wise chains between QDQ nodes into table lookups (lower/int8_tables.py);
resolve attribute defaults and turn constant inputs into attributes; fuse activations into
Conv/Gemm/MatMul and Relu into float32 Add; plan memory; serialise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import onnx
from onnx import numpy_helper, shape_inference

from edgepack.errors import ModelError
from edgepack.lower import device_graph as dg
from edgepack.lower.capabilities import (
    FOLDABLE_ONLY,
    missing_ops_message,
    op_table,
    runtime_ops,
)
from edgepack.lower.frame_fusion import fuse_frame_ops
from edgepack.lower.int8_tables import TablePlan, plan_tables
from edgepack.lower.ops import ONNX_DTYPES, LoweredNode, NodeIndex, lower_node, resolve_defaults

# The op list is the capability table (lower/op_table.toml), shared with the C++ registry.
SUPPORTED_OPS: frozenset[str] = runtime_ops()
OPSET = 17
MIN_OPSET = 13
FUSABLE = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})
ACTIVATIONS = frozenset({"Relu", "Clip", "HardSwish", "HardSigmoid"})


def unsupported_ops(model: onnx.ModelProto) -> list[tuple[str, str]]:
    """(op_type, node name) of every node the CPU runtime cannot run, in graph order."""
    out = []
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx") or (
            node.op_type not in SUPPORTED_OPS and node.op_type not in FOLDABLE_ONLY
        ):
            out.append((node.op_type, node.name))
    return out


def _check_ops(model: onnx.ModelProto) -> None:
    """Refuses, in one message, every op type the CPU runtime lacks (with node counts)."""
    bad = unsupported_ops(model)
    if bad:
        foreign = sorted({op for op, _ in bad if op in SUPPORTED_OPS or op in FOLDABLE_ONLY})
        message = missing_ops_message(op for op, _ in bad if op not in foreign)
        if foreign:  # an op type of the table, but from a custom domain
            message = "; ".join(filter(None, [message, "ops from a custom domain: " +
                                              ", ".join(foreign)]))
        raise ModelError(f"the CPU runtime cannot run this graph: {message}")


def _check_nodes(
    nodes: list[onnx.NodeProto], consts: Mapping[str, object],
    info: Mapping[str, tuple[str, list[int], bool]],
) -> None:
    """Refuses, per the capability table, computed inputs that must be constant and data
    inputs of a dtype the op does not list."""
    table = op_table()
    for node in nodes:
        cap = table.get(node.op_type)
        if cap is None or cap.fused_only:
            raise ModelError(
                f"op '{node.op_type}' (node '{node.name or node.output[0]}') is only supported "
                "when its inputs are constant (it is folded at pack time)"
            )
        for i in cap.const_inputs:
            if i < len(node.input) and node.input[i] and node.input[i] not in consts:
                raise ModelError(
                    f"op '{node.op_type}' (node '{node.name or node.output[0]}'): input {i} "
                    f"('{node.input[i]}') must be constant at pack time (it is computed)"
                )
        if not node.input or not node.input[0] or node.input[0] not in info:
            continue
        dtype = info[node.input[0]][0]
        if dtype not in cap.dtypes and dtype not in cap.via_float32:
            raise ModelError(
                f"op '{node.op_type}' (node '{node.name or node.output[0]}'): input dtype {dtype} "
                f"is not supported by the CPU runtime ({', '.join(cap.dtypes)})"
            )


def _check_opset(model: onnx.ModelProto) -> None:
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx") and not MIN_OPSET <= imp.version <= OPSET:
            raise ModelError(
                f"opset {imp.version} is not supported by the CPU runtime "
                f"(ai.onnx opset {MIN_OPSET}..{OPSET}; edgepack emits {OPSET})"
            )


def _fold_constants(
    model: onnx.ModelProto, shapes: dict[str, list[int]]
) -> tuple[list[onnx.NodeProto], dict[str, object]]:
    """Evaluates what can be known at pack time; returns the remaining nodes and constants."""
    import numpy as np
    from onnx.reference import ReferenceEvaluator

    consts: dict[str, np.ndarray] = {
        i.name: numpy_helper.to_array(i) for i in model.graph.initializer
    }
    graph_outputs = {o.name for o in model.graph.output}
    remaining: list[onnx.NodeProto] = []
    for node in model.graph.node:
        ins = [i for i in node.input if i]
        if node.op_type == "Constant":
            value = next(iter(ReferenceEvaluator(_one_node_model(node, model)).run(None, {})))
            consts[str(node.output[0])] = np.asarray(value)
            continue
        if node.op_type == "Shape" and ins and shapes.get(ins[0]) is not None:
            shape = np.asarray(shapes[ins[0]], dtype=np.int64)
            attrs = {a.name: a.i for a in node.attribute}
            rank = len(shape)
            start = attrs.get("start", 0)
            end = attrs.get("end", rank)
            start = min(max(start + rank if start < 0 else start, 0), rank)
            end = min(max(end + rank if end < 0 else end, 0), rank)
            consts[node.output[0]] = shape[start:end]
            continue
        if node.op_type == "DequantizeLinear" and all(i in consts for i in ins):
            # int8 weights of a QDQ model ([models.quantize]): float32 weights for the
            # float kernels, at any size (the output is no larger than the int8 input).
            consts[node.output[0]] = _dequantize(node, [consts[i] for i in ins])
            continue
        foldable = (
            node.op_type not in ("NonMaxSuppression", "TopK")
            and all(i in consts for i in ins)
            and not any(o in graph_outputs for o in node.output)
            and sum(int(consts[i].size) for i in ins) <= 1 << 16
            and _small_output(node, shapes)
        )
        if foldable:
            feeds = {i: consts[i] for i in ins}
            values = ReferenceEvaluator(_one_node_model(node, model)).run(None, feeds)
            for name, v in zip(node.output, values, strict=False):
                consts[name] = np.asarray(v)
            continue
        remaining.append(node)
    return remaining, consts  # type: ignore[return-value]


def _dequantize(node: onnx.NodeProto, args: list[Any]) -> Any:
    """ONNX DequantizeLinear (per tensor or per axis) in numpy: (x - zero_point) * scale."""
    import numpy as np

    x, scale = args[0], np.asarray(args[1], np.float32)
    zero = np.asarray(args[2]) if len(args) > 2 else np.zeros((), x.dtype)
    if scale.ndim == 1 and scale.size > 1:
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1) % x.ndim
        shape = [1] * x.ndim
        shape[axis] = scale.size
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    return ((x.astype(np.int32) - zero.astype(np.int32)).astype(np.float32) * scale)


# Folding evaluates a node at pack time, so its output must be bounded before it is computed:
# every output's inferred shape within FOLD_MAX_ELEMENTS; an output whose shape inference did not
# give is folded only for ops whose output is no larger than their inputs (shape chains).
_SIZE_BOUNDED = frozenset({
    "Cast", "Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity", "Slice", "Concat",
    "Transpose", "Shape", "Size", "Split", "Neg", "Abs", "Floor", "Ceil", "Round", "Sqrt",
    "Relu", "Not", "Sign", "ReduceMax", "ReduceMin", "ReduceSum", "ReduceProd", "ReduceMean",
    "ArgMax", "ArgMin", "Clip",
})
FOLD_MAX_ELEMENTS = 1 << 22
MAX_TENSOR_BYTES = 1 << 32  # a tensor larger than this is refused at pack time


def _small_output(node: onnx.NodeProto, shapes: dict[str, list[int]]) -> bool:
    for o in node.output:
        if not o:
            continue
        if o in shapes:
            if math.prod(shapes[o]) > FOLD_MAX_ELEMENTS:
                return False
        elif node.op_type not in _SIZE_BOUNDED:
            return False
    return True


def _one_node_model(node: onnx.NodeProto, model: onnx.ModelProto) -> onnx.ModelProto:
    g = onnx.helper.make_graph(
        [node], "fold",
        [onnx.helper.make_tensor_value_info(i, 0, None) for i in node.input if i],
        [onnx.helper.make_tensor_value_info(o, 0, None) for o in node.output],
    )
    return onnx.helper.make_model(g, opset_imports=list(model.opset_import))


def _static_shapes(model: onnx.ModelProto) -> dict[str, list[int]]:
    """Shapes of every tensor whose shape ONNX can infer fully (possibly after folding)."""
    inferred = shape_inference.infer_shapes(model, data_prop=True)
    out: dict[str, list[int]] = {}
    for vi in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        tt = vi.type.tensor_type
        if not tt.HasField("shape"):
            continue
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tt.shape.dim]
        if all(d >= 0 for d in dims):
            out[vi.name] = dims
    for init in model.graph.initializer:
        out[init.name] = list(init.dims)
    return out


def lower(model: onnx.ModelProto, input_bounds: Mapping[str, int] | None = None, *,
          int8_tables: bool = True) -> bytes:
    """The device graph bytes for ``model``; raises ModelError for what the runtime can't run.

    ``input_bounds`` names graph inputs whose dimension 0 depends on data (e.g. the boxes a crop
    stage receives from a detector's NMS) with their bound; they become dynamic_dim0 inputs.
    ``int8_tables=False`` keeps int8 element-wise chains in float32 (benchmarks compare)."""
    bounds = dict(input_bounds or {})
    if bounds:
        model = _bind_input_bounds(model, bounds)
    _check_opset(model)
    _check_ops(model)
    initializer_names = {i.name for i in model.graph.initializer}
    for gi in model.graph.input:
        if gi.name not in initializer_names and not gi.type.tensor_type.HasField("shape"):
            raise ModelError(f"graph input '{gi.name}' has no shape (static shapes required)")
    shapes = _static_shapes(model)
    nodes, consts = _fold_constants(model, shapes)
    from edgepack.lower.shapes import infer_with_bounds

    info = infer_with_bounds(model, nodes, consts, set(bounds))  # name -> (dtype, shape, dynamic)
    _check_nodes(nodes, consts, info)
    tables = plan_tables(model, nodes, consts, info) if int8_tables else TablePlan(set(), {}, {})
    consts.update(tables.tables)
    lowered: list[LoweredNode] = []
    for node in nodes:
        if id(node) in tables.replacement:
            lowered.append(tables.replacement[id(node)])
        if id(node) in tables.dropped:
            continue
        attrs = resolve_defaults(node)
        lowered.extend(lower_node(node, attrs, consts, info))
    lowered = fuse_frame_ops(lowered, {o.name for o in model.graph.output}, consts, info)
    lowered = _fuse_gelu(lowered, {o.name for o in model.graph.output}, consts, info)
    lowered = _fuse_matmul_bias(lowered, {o.name for o in model.graph.output}, consts, info)
    lowered = _fuse_silu(lowered, {o.name for o in model.graph.output})
    lowered = _fuse_activations(lowered, {o.name for o in model.graph.output})
    lowered = _fuse_add_relu(lowered, {o.name for o in model.graph.output}, info)
    lowered = _fuse_channel_layernorm(lowered, {o.name for o in model.graph.output}, consts, info)
    lowered = _drop_output_identities(lowered, [o.name for o in model.graph.output],
                                      {i.name for i in model.graph.input}, consts, info)
    return _build(model, lowered, consts, info)


def _bind_input_bounds(model: onnx.ModelProto, bounds: dict[str, int]) -> onnx.ModelProto:
    """A copy of ``model`` whose bounded inputs have their bound as static dimension 0."""
    bound_model = onnx.ModelProto()
    bound_model.CopyFrom(model)
    inputs = {gi.name: gi for gi in bound_model.graph.input}
    for name, bound in bounds.items():
        gi = inputs.get(name)
        if gi is None or not gi.type.tensor_type.shape.dim:
            raise ModelError(f"bounded input '{name}' is not a graph input with rank >= 1")
        dim0 = gi.type.tensor_type.shape.dim[0]
        dim0.Clear()
        dim0.dim_value = bound
    return bound_model


def _scalar_const(consts: Mapping[str, object], name: str, want: float) -> bool:
    """``name`` is a constant holding one value within float32 rounding of ``want``."""
    import numpy as np

    if name not in consts:
        return False
    arr = np.asarray(consts[name])
    return bool(arr.size == 1 and abs(float(arr.reshape(-1)[0]) - want) <= 1e-6 * abs(want))


def _fuse_gelu(nodes: list[LoweredNode], graph_outputs: set[str], consts: Mapping[str, object],
               info: Mapping[str, tuple[str, list[int], bool]]) -> list[LoweredNode]:
    """GELU as torch exports it, ``Mul(Mul(x, Add(Erf(Div(x, sqrt 2)), 1)), 0.5)`` (also with
    ``Mul(x, 1/sqrt 2)``), becomes one ``Gelu`` (one pass instead of five) when the intermediate
    tensors have no other reader."""
    index = NodeIndex(nodes, graph_outputs)
    producer, only_reader = index.producer, index.only_reader

    def other(n: LoweredNode, t: str) -> str | None:
        if len(n.inputs) != 2 or len(n.outputs) != 1 or "activation" in n.attrs:
            return None
        if n.inputs[0] == t:
            return n.inputs[1]
        return n.inputs[0] if n.inputs[1] == t else None

    dropped: set[int] = set()
    fused: dict[int, LoweredNode] = {}  # id of the chain's last node -> its replacement
    for erf in nodes:
        if erf.op_type != "Erf" or len(erf.inputs) != 1 or id(erf) in dropped:
            continue
        scale = producer.get(erf.inputs[0])
        if scale is None or len(scale.inputs) != 2 or "activation" in scale.attrs:
            continue
        x, c = scale.inputs
        if not ((scale.op_type == "Div" and _scalar_const(consts, c, math.sqrt(2.0)))
                or (scale.op_type == "Mul" and _scalar_const(consts, c, math.sqrt(0.5)))):
            continue
        add = only_reader(erf.outputs[0])
        one = other(add, erf.outputs[0]) if add is not None and add.op_type == "Add" else None
        if add is None or one is None or not _scalar_const(consts, one, 1.0):
            continue
        mul = only_reader(add.outputs[0])
        if mul is None or mul.op_type != "Mul" or other(mul, add.outputs[0]) != x:
            continue
        half = only_reader(mul.outputs[0])
        h = other(half, mul.outputs[0]) if half is not None and half.op_type == "Mul" else None
        if (half is None or h is None or not _scalar_const(consts, h, 0.5)
                or only_reader(scale.outputs[0]) is not erf
                or info.get(x, ("",))[0] != "float32"
                or info.get(half.outputs[0], ("", []))[1] != info[x][1]):
            continue
        fused[id(half)] = LoweredNode("Gelu", erf.name, [x], list(half.outputs),
                                      {"approximate": dg.Attr(dg.ATTR_STRING, "none")})
        dropped.update((id(scale), id(erf), id(add), id(mul)))
    return [fused.get(id(n), n) for n in nodes if id(n) not in dropped]


def _fuse_matmul_bias(nodes: list[LoweredNode], graph_outputs: set[str],
                      consts: Mapping[str, object],
                      info: Mapping[str, tuple[str, list[int], bool]]) -> list[LoweredNode]:
    """``Add(MatMul(a, B), bias)`` with B 2-D [K, N] and a constant float32 bias of N values along
    the last axis (a linear layer as torch exports it) becomes MatMul's third input, added in
    the GEMM's output pass, when the product has no other reader. A following activation (GELU
    in a transformer's MLP) then fuses into the MatMul as well."""
    import numpy as np

    index = NodeIndex(nodes, graph_outputs)
    producer = index.producer
    dropped: set[int] = set()
    for add in nodes:
        if add.op_type != "Add" or len(add.inputs) != 2 or "activation" in add.attrs:
            continue
        for y, c in (add.inputs, add.inputs[::-1]):
            mm = producer.get(y)
            if (mm is None or mm.op_type != "MatMul" or len(mm.inputs) != 2
                    or "activation" in mm.attrs or index.only_reader(y) is None
                    or c not in consts):
                continue
            b_shape = info.get(mm.inputs[1], ("", [], False))[1]
            y_dtype, y_shape, _ = info.get(y, ("", [], False))
            bias = np.asarray(consts[c])
            if (len(b_shape) != 2 or y_dtype != "float32" or bias.dtype != np.float32
                    or not y_shape or bias.ndim > len(y_shape)
                    or bias.size != b_shape[1] or bias.shape[-1:] != (b_shape[1],)):
                continue
            mm.inputs.append(c)
            mm.outputs[0] = add.outputs[0]
            dropped.add(id(add))
            break
    return [n for n in nodes if id(n) not in dropped]


def _fuse_silu(nodes: list[LoweredNode], graph_outputs: set[str]) -> list[LoweredNode]:
    """``y = src(...); Mul(y, Sigmoid(y))`` (SiLU / Swish, as torch exports it) becomes ``src``
    with activation "Silu" when y and the Sigmoid's output have no other reader."""
    index = NodeIndex(nodes, graph_outputs)
    producer = index.producer
    dropped: set[int] = set()
    for n in nodes:
        if n.op_type != "Mul" or len(n.inputs) != 2 or len(n.outputs) != 1:
            continue
        for y, s in (n.inputs, n.inputs[::-1]):
            sig, src = producer.get(s), producer.get(y)
            if (
                sig is not None and src is not None
                and sig.op_type == "Sigmoid" and sig.inputs == [y]
                and src.op_type in FUSABLE and "activation" not in src.attrs
                and index.reads(y) == 2 and index.reads(s) == 1
                and y not in graph_outputs and s not in graph_outputs
            ):
                src.attrs["activation"] = dg.Attr(dg.ATTR_STRING, "Silu")
                src.outputs[0] = n.outputs[0]
                dropped.update((id(sig), id(n)))
                break
    return [n for n in nodes if id(n) not in dropped]


def _erf_gelu(n: LoweredNode) -> bool:
    """A Gelu whose form the fused epilogue computes (erf, not the tanh approximation)."""
    approximate = n.attrs.get("approximate")
    return approximate is None or approximate.value == "none"


def _fuse_activations(nodes: list[LoweredNode], graph_outputs: set[str]) -> list[LoweredNode]:
    index = NodeIndex(nodes, graph_outputs)
    producer = index.producer
    out: list[LoweredNode] = []
    for n in nodes:
        fusable = n.op_type in ACTIVATIONS or (n.op_type == "Gelu" and _erf_gelu(n))
        src = producer.get(n.inputs[0]) if fusable and n.inputs else None
        if (
            src is not None
            and src.op_type in FUSABLE
            and "activation" not in src.attrs
            and index.only_reader(src.outputs[0]) is not None
            and len(n.inputs) == 1
        ):
            src.attrs["activation"] = dg.Attr(dg.ATTR_STRING, n.op_type)
            if n.op_type == "Clip":
                src.attrs["activation_min"] = n.attrs["min"]
                src.attrs["activation_max"] = n.attrs["max"]
            elif n.op_type == "HardSigmoid":
                src.attrs["activation_alpha"] = n.attrs["alpha"]
                src.attrs["activation_beta"] = n.attrs["beta"]
            src.outputs[0] = n.outputs[0]
            continue
        out.append(n)
    return out


def _fuse_add_relu(nodes: list[LoweredNode], graph_outputs: set[str],
                   info: Mapping[str, tuple[str, list[int], bool]]) -> list[LoweredNode]:
    """``Relu(Add(a, b))`` on float32 (ResNet's residuals) becomes one Add with activation
    "Relu" when the sum has no other reader: one pass over the tensor instead of two."""
    index = NodeIndex(nodes, graph_outputs)
    producer = index.producer
    out: list[LoweredNode] = []
    for n in nodes:
        src = producer.get(n.inputs[0]) if n.op_type == "Relu" and len(n.inputs) == 1 else None
        if (
            src is not None
            and src.op_type == "Add"
            and "activation" not in src.attrs
            and len(src.outputs) == 1
            and info.get(src.outputs[0], ("",))[0] == "float32"
            and index.only_reader(src.outputs[0]) is not None
        ):
            src.attrs["activation"] = dg.Attr(dg.ATTR_STRING, "Relu")
            src.outputs[0] = n.outputs[0]
            continue
        out.append(n)
    return out


def _fuse_channel_layernorm(nodes: list[LoweredNode], graph_outputs: set[str],
                            consts: Mapping[str, object],
                            info: Mapping[str, tuple[str, list[int], bool]]) -> list[LoweredNode]:
    """A LayerNorm across the channels of channels-first data as exported (timm's LayerNorm2d in
    ConvNeXt: ``Transpose(0, 2, .., 1) -> LayerNormalization(last axis) -> Transpose(0, r-1, 1,
    ..)``) becomes one LayerNormalization with ``channels_first`` = 1 on the untransposed tensor:
    two copies of the tensor fewer, and the statistics vectorised along positions instead of
    along rows of a few dozen channels. Only when the transposed tensors have no other reader,
    the LayerNorm has no Mean/InvStdDev output and Scale/B hold one value per channel."""
    index = NodeIndex(nodes, graph_outputs)
    producer, only_reader = index.producer, index.only_reader

    def shape(name: str) -> list[int] | None:
        if name in consts:
            return list(getattr(consts[name], "shape", []))
        return info[name][1] if name in info else None

    def perm(n: LoweredNode | None) -> list[int] | None:
        if n is None or n.op_type != "Transpose" or "perm" not in n.attrs:
            return None
        value = n.attrs["perm"].value
        return [int(v) for v in value] if isinstance(value, list) else None

    dropped: set[int] = set()
    fused: dict[int, LoweredNode] = {}  # id of the closing Transpose -> the LayerNorm
    for ln in nodes:
        if ln.op_type != "LayerNormalization" or len([o for o in ln.outputs if o]) != 1 \
                or not ln.outputs[0] or len(ln.inputs) < 2:
            continue
        opening = producer.get(ln.inputs[0])
        x = opening.inputs[0] if opening is not None and opening.inputs else ""
        x_shape = shape(x) if x else None
        if x_shape is None or len(x_shape) < 3 or info.get(x, ("",))[0] != "float32":
            continue
        rank = len(x_shape)
        closing = only_reader(ln.outputs[0], "Transpose")
        axis = ln.attrs["axis"].value if "axis" in ln.attrs else -1
        if (perm(opening) != [0, *range(2, rank), 1] or perm(closing) != [0, rank - 1,
                                                                           *range(1, rank - 1)]
                or only_reader(ln.inputs[0]) is not ln or axis not in (-1, rank - 1)
                or info.get(x, (None, None, True))[2]):
            continue
        params = [i for i in ln.inputs[1:] if i]
        if any(math.prod(shape(i) or [0]) != x_shape[1] for i in params):
            continue
        assert closing is not None and opening is not None
        attrs = {**ln.attrs, "axis": dg.Attr(dg.ATTR_INT, 1),
                 "channels_first": dg.Attr(dg.ATTR_INT, 1)}
        fused[id(closing)] = LoweredNode("LayerNormalization", ln.name, [x, *ln.inputs[1:]],
                                         [closing.outputs[0]], attrs)
        dropped.update((id(opening), id(ln)))
    return [fused.get(id(n), n) for n in nodes if id(n) not in dropped]


def _drop_output_identities(nodes: list[LoweredNode], graph_outputs: list[str],
                            graph_inputs: set[str], consts: Mapping[str, object],
                            info: Mapping[str, tuple[str, list[int], bool]]) -> list[LoweredNode]:
    """``y = Identity(x)`` with y a graph output (the pre/post graphs name their outputs so) is a
    copy at run time: when x is written by a node and is neither a graph input or output nor a
    constant, that node writes y instead (every reader of x reads y) and the Identity goes.
    Otherwise the Identity stays: every graph output must be written by a node."""
    outputs = set(graph_outputs)
    producer = {o: n for n in nodes for o in n.outputs if o}
    renamed: dict[str, str] = {}  # x -> y
    dropped: set[int] = set()
    for n in nodes:
        if n.op_type != "Identity" or len(n.inputs) != 1 or len(n.outputs) != 1:
            continue
        x, y = renamed.get(n.inputs[0], n.inputs[0]), n.outputs[0]
        src = producer.get(x)
        if (src is None or y not in outputs or x in outputs or x in graph_inputs
                or x in consts or info.get(x) != info.get(y)):
            continue
        src.outputs = [y if o == x else o for o in src.outputs]
        renamed[x] = y
        dropped.add(id(n))
    kept = [n for n in nodes if id(n) not in dropped]
    for n in kept:
        n.inputs = [renamed.get(i, i) if i else i for i in n.inputs]
    return kept


def _build(
    model: onnx.ModelProto,
    nodes: list[LoweredNode],
    consts: dict[str, object],
    info: dict[str, tuple[str, list[int], bool]],
) -> bytes:
    import numpy as np

    tensors: list[dg.TensorDef] = []
    index: dict[str, int] = {}

    def tensor(name: str) -> int:
        if name in index:
            return index[name]
        if name in consts:
            arr = np.asarray(consts[name])
            dtype = ONNX_DTYPES.get(onnx.helper.np_dtype_to_tensor_dtype(arr.dtype))
            if dtype is None:
                raise ModelError(f"constant '{name}' has unsupported dtype {arr.dtype}")
            t = dg.TensorDef(name, dtype, list(arr.shape), dg.FLAG_CONSTANT, arr)
        else:
            if name not in info:
                raise ModelError(f"tensor '{name}' has no static shape after shape inference")
            dtype, shape, dyn = info[name]
            nbytes = math.prod(shape) * dg.NUMPY_DTYPES[dtype].itemsize
            if nbytes > MAX_TENSOR_BYTES:
                raise ModelError(f"tensor '{name}' would take {nbytes} bytes (shape {shape}); "
                                 f"the limit is {MAX_TENSOR_BYTES}")
            t = dg.TensorDef(name, dtype, shape, dg.FLAG_DYNAMIC_DIM0 if dyn else 0)
        index[name] = len(tensors)
        tensors.append(t)
        return index[name]

    initializer_names = {i.name for i in model.graph.initializer}
    inputs = []
    for gi in model.graph.input:
        if gi.name in initializer_names:
            continue
        idx = tensor(gi.name)
        tensors[idx].flags |= dg.FLAG_INPUT
        inputs.append(idx)
    dnodes = [
        dg.NodeDef(
            n.op_type, n.name, [tensor(i) if i else None for i in n.inputs],
            [tensor(o) for o in n.outputs], n.attrs,
        )
        for n in nodes
    ]
    outputs = []
    for go in model.graph.output:
        idx = tensor(go.name)
        if tensors[idx].flags & (dg.FLAG_CONSTANT | dg.FLAG_INPUT):
            raise ModelError(
                f"graph output '{go.name}' is a constant or a graph input; "
                "the runtime needs it computed by a node"
            )
        tensors[idx].flags |= dg.FLAG_OUTPUT
        outputs.append(idx)
    graph = dg.DeviceGraph(tensors, dnodes, inputs, outputs)
    dg.plan_memory(graph)
    return dg.serialize(graph)

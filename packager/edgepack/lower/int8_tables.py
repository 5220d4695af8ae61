# SPDX-License-Identifier: Apache-2.0
"""int8 lowering pattern: element-wise float chains between QDQ nodes become one table lookup.

In a QDQ model ([models.quantize], onnxruntime's quantize_static) an activation such as SiLU
runs as ``x -> DequantizeLinear -> Sigmoid -> QuantizeLinear -> DequantizeLinear -> Mul(with
DequantizeLinear(x)) -> QuantizeLinear``: six passes over the tensor in float32, although the
result depends on nothing but the 8-bit value of ``x``. Such a chain (element-wise ops whose
other operands are scalar constants, leaves that all dequantise one uint8/int8 tensor per
tensor, ending in a per-tensor QuantizeLinear to uint8/int8, no intermediate read elsewhere)
is evaluated once at pack time for all 256 values of ``x`` by onnxruntime, op by op (what the
host's emulation of the QDQ graph computes), and lowers to one ``QuantizeLinear`` node with a
fourth input: the 256-entry table (docs/device-graph-format.md), so the device does
``y = table[x]``. A chain of two byte tensors of one shape (a residual ``DQ(a) + DQ(b) ->
[Relu ->] Q``) has a 65536-entry table and the second tensor as a fifth input:
``y = table[256 * x + x2]``, unless it is a residual ``DQ(a) + DQ(b) [-> Relu] -> Q`` whose
table ``pair_formula`` (what the runtime then computes in float32) reproduces for all 65536
pairs: that one is a QuantizeLinear without a table, with x_scales / x_zero_points / relu
attributes (docs/device-graph-format.md). A bare ``DequantizeLinear -> QuantizeLinear`` (a
requantisation from one (scale, zero point) to another, e.g. a Concat input's,
model/qdq_bytes.py) is such a chain too. A leaf DequantizeLinear that other nodes read as well
stays for them (it goes when all its readers went into tables).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgepack.lower import device_graph as dg
from edgepack.lower.ops import LoweredNode

# Element-wise float ops a chain may contain (other inputs: scalar constants or the chain).
ELEMENTWISE = frozenset({
    "Sigmoid", "Mul", "Add", "Sub", "Div", "Relu", "Clip", "Tanh", "HardSigmoid", "HardSwish",
    "LeakyRelu", "Neg", "Abs", "Exp", "Softplus", "Elu", "Erf", "Sqrt", "Reciprocal", "Pow",
    "Min", "Max",
})
BYTE_TYPES = {"uint8": TensorProto.UINT8, "int8": TensorProto.INT8}


@dataclass
class TablePlan:
    """What lowering does with the chains it found."""

    dropped: set[int]  # id() of the ONNX nodes the tables replace
    replacement: dict[int, LoweredNode]  # id() of a chain's last QuantizeLinear -> its node
    tables: dict[str, np.ndarray]  # the new constants (one table per chain)
    arithmetic: int = 0  # pair chains computed by pair_formula instead of a table


def plan_tables(model: onnx.ModelProto, nodes: list[onnx.NodeProto], consts: dict[str, Any],
                info: dict[str, tuple[str, list[int], bool]]) -> TablePlan:
    """Finds the chains in ``nodes`` (after constant folding) and computes their tables."""
    producer = {o: n for n in nodes for o in n.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in nodes:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    graph_outputs = {o.name for o in model.graph.output}
    plan = TablePlan(set(), {}, {})
    kept: set[int] = set()  # leaf DequantizeLinear nodes that other readers may still need
    for q in reversed(nodes):  # last first: a chain swallows the QuantizeLinear nodes inside it
        if id(q) in plan.dropped or q.op_type != "QuantizeLinear":
            continue
        chain = _chain(q, producer, consumers, consts, info, graph_outputs)
        if chain is None:
            continue
        members, xs, shared = chain
        ordered = [n for n in nodes if id(n) in members]
        x_dtypes, y_dtype = [info[x][0] for x in xs], info[q.output[0]][0]
        table = _table(model, ordered, q, xs, x_dtypes, y_dtype, consts)
        plan.dropped.update(members - shared)
        kept.update(shared)
        attrs = _pair_attrs(ordered, q, xs, x_dtypes, y_dtype, consts, table)
        if attrs is not None:  # the same bytes by arithmetic: no table
            plan.arithmetic += 1
            plan.replacement[id(q)] = LoweredNode(
                "QuantizeLinear", q.name, [xs[0], q.input[1], _input(q, 2), "", xs[1]],
                [q.output[0]], attrs)
            continue
        name = f"{q.output[0]}::table"
        plan.tables[name] = table
        plan.replacement[id(q)] = LoweredNode("QuantizeLinear", q.name,
                                              [xs[0], q.input[1], _input(q, 2), name, *xs[1:]],
                                              [q.output[0]])
    for n in nodes:  # a shared leaf DequantizeLinear goes when all its readers went
        if id(n) in kept and all(id(c) in plan.dropped for c in consumers.get(n.output[0], [])):
            plan.dropped.add(id(n))
    return plan


def pair_formula(a: np.ndarray, b: np.ndarray, x_scales: tuple[float, float],
                 x_zero_points: tuple[int, int], y_scale: float, y_zero_point: int, relu: bool,
                 y_dtype: str) -> np.ndarray:
    """The runtime's arithmetic form of ``DQ(a) + DQ(b) [-> Relu] -> Q`` (ops/quant.cpp,
    kernels::add_byte_pairs), operation by operation in float32, no fused multiply-add:
    ``v = (float(a - za) * sa + float(b - zb) * sb) / sy``, clamped to [lo - zy, hi - zy]
    (Relu: the lower bound at least 0), rounded half to even (+- 1.5 * 2^23), plus zy; a and b
    are the byte values (uint8 or int8 numbers), the result is y's bytes as uint8."""
    f32 = np.float32
    va = (a.astype(np.int32) - x_zero_points[0]).astype(f32) * f32(x_scales[0])
    vb = (b.astype(np.int32) - x_zero_points[1]).astype(f32) * f32(x_scales[1])
    v = (va + vb) / f32(y_scale)
    qmin, qmax = (0, 255) if y_dtype == "uint8" else (-128, 127)
    lo, hi = f32(qmin - y_zero_point), f32(qmax - y_zero_point)
    if relu:
        lo = max(lo, f32(0.0))
    v = np.where(v > lo, v, lo).astype(f32)
    v = np.where(v < hi, v, hi).astype(f32)
    magic = f32(12582912.0)
    v = (v + magic) - magic
    return ((v + f32(y_zero_point)).astype(np.int32) & 0xFF).astype(np.uint8)


def _scalar(name: str, consts: dict[str, Any], default: float) -> float:
    return default if name == "" else float(np.asarray(consts[name]).reshape(-1)[0])


def _pair_attrs(ordered: list[onnx.NodeProto], q: onnx.NodeProto, xs: list[str],
                x_dtypes: list[str], y_dtype: str, consts: dict[str, Any],
                table: np.ndarray) -> dict[str, dg.Attr] | None:
    """QuantizeLinear's attributes for the arithmetic form of a chain ``DQ(x) + DQ(x2) [->
    Relu] -> Q`` (per-tensor parameters) when pair_formula gives the table's bytes for all
    65536 pairs, else None (the table stays)."""
    if len(xs) != 2 or [n.op_type for n in ordered].count("DequantizeLinear") != 2:
        return None
    by_out = {o: n for n in ordered for o in n.output}
    top = by_out.get(q.input[0])
    relu = top is not None and top.op_type == "Relu"
    add = by_out.get(top.input[0]) if relu and top is not None else top
    if add is None or add.op_type != "Add" or len(ordered) != 4 + relu:
        return None
    dqs = [by_out.get(i) for i in add.input]
    if any(d is None or d.op_type != "DequantizeLinear" for d in dqs):
        return None
    params = {}
    for d in dqs:
        assert d is not None
        params[d.input[0]] = (_scalar(d.input[1], consts, 1.0), int(_scalar(_input(d, 2),
                                                                            consts, 0)))
    if sorted(params) != xs:
        return None
    (sa, za), (sb, zb) = params[xs[0]], params[xs[1]]
    sy, zy = _scalar(q.input[1], consts, 1.0), int(_scalar(_input(q, 2), consts, 0))
    byte = np.arange(256, dtype=np.uint8)
    grid = [np.repeat(byte, 256), np.tile(byte, 256)]
    a, b = (g.view(np.int8) if t == "int8" else g for g, t in zip(grid, x_dtypes, strict=True))
    got = pair_formula(a, b, (sa, sb), (za, zb), sy, zy, relu, y_dtype)
    if not np.array_equal(got, table.view(np.uint8)):
        return None
    return {"x_scales": dg.Attr(dg.ATTR_FLOATS, [sa, sb]),
            "x_zero_points": dg.Attr(dg.ATTR_INTS, [za, zb]),
            "relu": dg.Attr(dg.ATTR_INT, int(relu))}


def _input(node: onnx.NodeProto, i: int) -> str:
    return node.input[i] if len(node.input) > i else ""


def _scalar_const(name: str, consts: dict[str, Any]) -> bool:
    return name == "" or (name in consts and np.asarray(consts[name]).size == 1)


def _chain(q: onnx.NodeProto, producer: dict[str, onnx.NodeProto],
           consumers: dict[str, list[onnx.NodeProto]], consts: dict[str, Any],
           info: dict[str, tuple[str, list[int], bool]],
           graph_outputs: set[str]) -> tuple[set[int], list[str], set[int]] | None:
    """(id()s of the chain's nodes, including ``q``; the byte tensors it reads: one, or two of
    one static shape, e.g. a residual Add's; the id()s of its DequantizeLinear nodes of those
    that other nodes read too, which stay for them) or None."""
    if info.get(q.output[0], ("",))[0] not in BYTE_TYPES:
        return None
    walked = _walk(q, producer, consts)
    if walked is not None and len(walked[1]) > 2:  # e.g. residual Adds in a row: each its own
        walked = _walk(q, producer, consts, merge=False)
    found = None if walked is None else _check(q, *walked, consumers, consts, info, graph_outputs)
    if found is None or (len(found[1]) == 2 and walked is not None
                         and not _residual(walked[0].values())):
        # A residual Add is its own chain where the merged one fails (e.g. its one side is a
        # SiLU that a Concat reads too) or would merge more into a 65536-entry table (a SiLU:
        # the Add computed, pair_formula, and the SiLU's own 256-entry table are faster).
        alone = _walk(q, producer, consts, merge=False)
        if alone is not None and _residual(alone[0].values()):
            found = _check(q, *alone, consumers, consts, info, graph_outputs) or found
    return found


def _residual(members: Iterable[onnx.NodeProto]) -> bool:
    """The nodes are those of ``DQ(x) + DQ(x2) [-> Relu] -> Q`` (what pair_formula computes)."""
    ops = sorted(n.op_type for n in members)
    return ops in (["Add", "DequantizeLinear", "DequantizeLinear", "QuantizeLinear"],
                   ["Add", "DequantizeLinear", "DequantizeLinear", "QuantizeLinear", "Relu"])


def _check(q: onnx.NodeProto, members: dict[int, onnx.NodeProto], leaves: set[str],
           consumers: dict[str, list[onnx.NodeProto]], consts: dict[str, Any],
           info: dict[str, tuple[str, list[int], bool]],
           graph_outputs: set[str]) -> tuple[set[int], list[str], set[int]] | None:
    """_chain's answer for one walk from ``q``, or None where the chain cannot be a table."""
    xs = sorted(leaves)
    if len(xs) not in (1, 2):
        return None
    if any(x in consts or info.get(x, ("",))[0] not in BYTE_TYPES for x in xs):
        return None
    if len(xs) == 2 and (info[xs[0]][1] != info[xs[1]][1] or info[xs[0]][2] or info[xs[1]][2]
                         or info[q.output[0]][1] != info[xs[0]][1]):
        return None  # no broadcasting between the two, static shapes
    x = xs[0]
    rank = len(info[x][1])  # scalar constants of a higher rank would broadcast x up
    if any(np.asarray(consts[i]).ndim > rank for n in members.values() for i in n.input
           if i in consts):
        return None
    # Nothing computed inside may be read outside (the table replaces it), but a
    # DequantizeLinear of a byte tensor the chain reads (e.g. a C2f Split's output that a
    # residual Add and a Concat's requantisation both dequantise) stays for its other readers.
    shared: set[int] = set()
    for n in members.values():
        if n is q:
            continue
        for o in n.output:
            if o in graph_outputs or any(id(c) not in members for c in consumers.get(o, [])):
                if n.op_type != "DequantizeLinear" or n.input[0] not in leaves:
                    return None
                shared.add(id(n))
    return set(members), xs, shared


def _walk(q: onnx.NodeProto, producer: dict[str, onnx.NodeProto], consts: dict[str, Any],
          merge: bool = True) -> tuple[dict[int, onnx.NodeProto], set[str]] | None:
    """The nodes from ``q`` back to DequantizeLinear leaves (and the tensors those read), or
    None when something other than an element-wise op with scalar constants is in the way. A
    DequantizeLinear of a QuantizeLinear's output continues through it (with ``merge``) when
    that one's own chain qualifies, else the byte tensor between them is a leaf."""
    if not _scalar_const(q.input[1], consts) or not _scalar_const(_input(q, 2), consts):
        return None
    members: dict[int, onnx.NodeProto] = {id(q): q}
    leaves: set[str] = set()
    stack = [q.input[0]]
    while stack:
        n = producer.get(stack.pop())
        if n is None:
            return None  # a graph input read in float: not a function of one byte
        if id(n) in members:
            continue
        if n.op_type == "DequantizeLinear":
            if not (_scalar_const(n.input[1], consts) and _scalar_const(_input(n, 2), consts)):
                return None
            members[id(n)] = n
            src = producer.get(n.input[0])
            inner = (_walk(src, producer, consts)
                     if merge and src is not None and src.op_type == "QuantizeLinear" else None)
            if inner is None:
                leaves.add(n.input[0])  # the byte tensor the chain is a function of
            else:
                members.update(inner[0])
                leaves |= inner[1]
            continue
        if n.op_type not in ELEMENTWISE:
            return None
        members[id(n)] = n
        for i in n.input:
            if i in consts:
                if not _scalar_const(i, consts):
                    return None
            elif i:
                stack.append(i)
    return members, leaves


def _table(model: onnx.ModelProto, ordered: list[onnx.NodeProto], q: onnx.NodeProto,
           xs: list[str], x_dtypes: list[str], y_dtype: str,
           consts: dict[str, Any]) -> np.ndarray:
    """The chain evaluated for every byte value of x: entry i is the output for the byte i
    (int8 x: its two's-complement pattern); of two tensors x1, x2: entry 256 * i + j is the
    output for the bytes i of x1 and j of x2 (65536 entries)."""
    import onnxruntime as ort

    byte = np.arange(256, dtype=np.uint8)
    grids = [byte] if len(xs) == 1 else [np.repeat(byte, 256), np.tile(byte, 256)]
    feeds = {x: g.view(np.uint8 if t == "uint8" else np.int8)
             for x, t, g in zip(xs, x_dtypes, grids, strict=True)}
    size = 256 ** len(xs)
    used = {i for n in ordered for i in n.input if i in consts}
    inits = [numpy_helper.from_array(np.asarray(consts[i]), i) for i in sorted(used)]
    graph = helper.make_graph(
        ordered, "table",
        [helper.make_tensor_value_info(x, BYTE_TYPES[t], [size])
         for x, t in zip(xs, x_dtypes, strict=True)],
        [helper.make_tensor_value_info(q.output[0], BYTE_TYPES[y_dtype], [size])], inits)
    proto = helper.make_model(graph, opset_imports=list(model.opset_import),
                              ir_version=model.ir_version)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(proto.SerializeToString(), opts,
                                   providers=["CPUExecutionProvider"])
    (out,) = session.run(None, feeds)
    return np.ascontiguousarray(np.asarray(out).reshape(size))

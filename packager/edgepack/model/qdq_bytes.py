# SPDX-License-Identifier: Apache-2.0
"""int8 lowering pattern: ops that only move or select values run on the uint8 bytes.

onnxruntime's quantize_static (QDQ format) leaves data-movement ops in float32 between
DequantizeLinear and QuantizeLinear: ``x -> DequantizeLinear -> Concat -> QuantizeLinear``, one
float32 pass in, one out, and the op itself on four times the bytes. For an op whose outputs are
a selection of its inputs' values (Concat, Split, Slice, Reshape, Transpose, nearest Resize) or
their maximum (MaxPool), quantisation commutes with the op: ``Q(op(DQ(x))) == op(Q(DQ(x)))``
exactly, since ``Q(DQ(.))`` is applied per value and never decreases. So the op reads the uint8
tensors directly:

* an input whose (scale, zero point) equals the output's is read as it is; another input of a
  Concat is first requantised to the output's (``DequantizeLinear -> QuantizeLinear``, which
  lowering turns into one 256-entry table lookup, lower/int8_tables.py);
* an output of a one-input op whose QuantizeLinear has the input's parameters is the op's output
  itself; otherwise a DequantizeLinear with the input's parameters goes in front of that
  QuantizeLinear (again one table).

The rewritten model is still standard ONNX (these ops accept uint8), so onnxruntime runs it for
the agreement check exactly as the device does.
"""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper, numpy_helper

# Ops whose outputs select (or take the maximum of) input values; input 0 is the data (Concat:
# every input).
SELECTING = frozenset({"Concat", "Split", "Slice", "Reshape", "Transpose", "Flatten", "Squeeze",
                       "Unsqueeze", "MaxPool", "Resize"})

Params = tuple[float, int]  # (scale, zero point), per tensor


def _params(node: onnx.NodeProto, inits: dict[str, onnx.TensorProto]) -> Params | None:
    """The per-tensor uint8 (scale, zero point) of a DequantizeLinear / QuantizeLinear whose
    scale and zero point are constant scalars, else None."""
    if len(node.input) < 3 or node.input[1] not in inits or node.input[2] not in inits:
        return None
    zp = inits[node.input[2]]
    if zp.data_type != TensorProto.UINT8:
        return None
    scale, zero = numpy_helper.to_array(inits[node.input[1]]), numpy_helper.to_array(zp)
    if scale.size != 1 or zero.size != 1:
        return None
    return float(scale.reshape(-1)[0]), int(zero.reshape(-1)[0])


def _selects(node: onnx.NodeProto) -> bool:
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if node.op_type == "Resize":  # tf_crop_and_resize would fill with a float extrapolation
        return (attrs.get("mode", b"nearest") in (b"nearest", "nearest")
                and attrs.get("coordinate_transformation_mode", b"half_pixel")
                not in (b"tf_crop_and_resize", "tf_crop_and_resize"))
    if node.op_type == "MaxPool":  # the runtime's uint8 MaxPool: 1-D or 2-D, no Indices output
        return (len([o for o in node.output if o]) == 1
                and len(attrs.get("kernel_shape", [])) in (1, 2))
    return node.op_type in SELECTING


def fuse_byte_ops(proto: onnx.ModelProto) -> int:
    """Rewrites ``proto`` in place as the module docstring says; returns the number of ops that
    now read uint8."""
    g = proto.graph
    inits = {i.name: i for i in g.initializer}
    producers = {o: n for n in g.node for o in n.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in g.node:
        for name in n.input:
            consumers.setdefault(name, []).append(n)
    graph_outputs = {o.name for o in g.output}
    dropped: set[int] = set()
    before: dict[int, list[onnx.NodeProto]] = {}  # id(node) -> new nodes placed before it
    after: dict[int, list[onnx.NodeProto]] = {}  # id(node) -> new nodes placed after it
    fused = 0
    for node in list(g.node):
        if not _selects(node):
            continue
        data = list(node.input) if node.op_type == "Concat" else [node.input[0]]
        dqs = [producers.get(name) for name in data]
        if any(dq is None or dq.op_type != "DequantizeLinear" or _params(dq, inits) is None
               for dq in dqs):
            continue
        outs = [o for o in node.output if o]
        qs: list[onnx.NodeProto] = []
        for o in outs:
            users = consumers.get(o, [])
            if (o in graph_outputs or len(users) != 1 or users[0].op_type != "QuantizeLinear"
                    or _params(users[0], inits) is None):
                break
            qs.append(users[0])
        if len(qs) != len(outs):
            continue
        in_params = [_params(dq, inits) for dq in dqs if dq is not None]
        out_params = [_params(q, inits) for q in qs]
        if node.op_type == "Concat" and len(set(out_params)) != 1:
            continue
        fused += 1
        new_inputs = list(node.input)
        for i, (dq, p) in enumerate(zip(dqs, in_params, strict=True)):
            assert dq is not None
            if node.op_type == "Concat" and p != out_params[0]:  # requantise to the output's
                requant = f"{node.input[i]}::requant"
                before.setdefault(id(node), []).append(helper.make_node(
                    "QuantizeLinear", [dq.output[0], qs[0].input[1], qs[0].input[2]], [requant],
                    name=f"{node.name}::requant{i}"))
                new_inputs[i] = requant
            else:
                new_inputs[i] = dq.input[0]
            if len(consumers.get(dq.output[0], [])) == 1 and not (
                    node.op_type == "Concat" and p != out_params[0]):
                dropped.add(id(dq))
        del node.input[:]
        node.input.extend(new_inputs)
        src = dqs[0]
        assert src is not None
        for j, (o, q) in enumerate(zip(outs, qs, strict=True)):
            index = list(node.output).index(o)
            if node.op_type == "Concat" or out_params[j] == in_params[0]:
                node.output[index] = q.output[0]
                dropped.add(id(q))
                continue
            byte = f"{o}::bytes"  # the op's uint8 output, back to float for q's requantisation
            node.output[index] = byte
            after.setdefault(id(node), []).append(helper.make_node(
                "DequantizeLinear", [byte, src.input[1], src.input[2]], [o],
                name=f"{node.name}::dq{j}"))
    nodes: list[onnx.NodeProto] = []
    for n in g.node:
        nodes.extend(before.get(id(n), []))
        if id(n) not in dropped:
            nodes.append(n)
        nodes.extend(after.get(id(n), []))
    del g.node[:]
    g.node.extend(nodes)
    # value_info written for the float tensors that now hold bytes would contradict them
    live = {o for n in g.node for o in n.output}
    keep = [v for v in g.value_info if v.name in live]
    del g.value_info[:]
    g.value_info.extend(keep)
    return fused


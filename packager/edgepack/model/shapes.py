# SPDX-License-Identifier: Apache-2.0
"""The static-shape requirement, checked after shape computations are folded.

What still has no static shape then depends on the data: the error names the node where the
size first depends on values (NonZero, a Reshape fed by computed values, a loop), the chain of
nodes it reaches, and where to cut the model.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from edgepack.errors import ModelError
from edgepack.model.diagnostics import one_line
from edgepack.model.optimize import infer_shapes

# Inputs (by position) that decide an op's output shape by their values.
_SHAPE_INPUTS = {
    "Reshape": (1,), "Expand": (1,), "Tile": (1,), "ConstantOfShape": (0,), "Range": (0, 1, 2),
    "Slice": (1, 2, 3, 4), "Resize": (2, 3), "Upsample": (1,), "TopK": (1,), "OneHot": (1,),
    "Pad": (1,), "Split": (1,), "Squeeze": (1,), "Unsqueeze": (1,), "ReduceSum": (1,),
    "ReduceMean": (1,), "ReduceMax": (1,), "ReduceMin": (1,), "ReduceProd": (1,),
}
_VALUE_SIZED = {"NonZero", "Unique", "Compress", "NonMaxSuppression", "Loop", "If", "Scan",
                "StringSplit"}
_CHAIN_SHOWN = 6
# No tensor of a model edgepack packs may be larger (the runtime plans every tensor in memory;
# onnxruntime's check would allocate it): 1 GiB.
MAX_TENSOR_BYTES = 1 << 30


def _static(value: onnx.ValueInfoProto | None) -> bool:
    if value is None:
        return False
    t = value.type.tensor_type
    return t.HasField("shape") and all(d.HasField("dim_value") for d in t.shape.dim)


def _label(node: onnx.NodeProto) -> str:
    return f"{node.op_type} {node.name!r}"


def _reason(node: onnx.NodeProto, producers: dict[str, onnx.NodeProto],
            constants: set[str]) -> str:
    if node.op_type in _VALUE_SIZED:
        return "its output size depends on the values of its inputs"
    for slot in _SHAPE_INPUTS.get(node.op_type, ()):
        if slot < len(node.input) and node.input[slot] and node.input[slot] not in constants:
            name = node.input[slot]
            back: list[str] = []
            while name in producers and len(back) < _CHAIN_SHOWN:
                producer = producers[name]
                back.append(_label(producer))
                name = next((i for i in producer.input if i and i not in constants), "")
            source = " <- ".join(back) if back else f"graph input {name!r}"
            return (f"its shape input {node.input[slot]!r} is computed from tensor values "
                    f"at run time ({source})")
    return "onnx shape inference cannot give its output a fixed shape"


def _downstream(node: onnx.NodeProto, graph: onnx.GraphProto) -> str:
    users: dict[str, list[onnx.NodeProto]] = {}
    for n in graph.node:
        for i in n.input:
            users.setdefault(i, []).append(n)
    outputs = {o.name for o in graph.output}
    chain = [_label(node)]
    current = node
    while len(chain) < _CHAIN_SHOWN:
        reached = next((o for o in current.output if o in outputs), None)
        if reached is not None:
            return " -> ".join([*chain, f"output {reached!r}"])
        nxt = next((u for o in current.output for u in users.get(o, [])), None)
        if nxt is None:
            break
        chain.append(_label(nxt))
        current = nxt
    return " -> ".join(chain) + (" -> ..." if len(chain) >= _CHAIN_SHOWN else "")


def _check_size(path_str: str, node: onnx.NodeProto, value: onnx.ValueInfoProto) -> None:
    t = value.type.tensor_type
    dims = [int(d.dim_value) for d in t.shape.dim]
    try:
        itemsize = helper.tensor_dtype_to_np_dtype(t.elem_type).itemsize
    except (KeyError, TypeError, ValueError):
        itemsize = 8
    size = int(np.prod(dims, dtype=np.float64)) * itemsize
    if size > MAX_TENSOR_BYTES:
        raise ModelError(f"{path_str}: tensor {value.name!r} (output of {_label(node)}) would "
                         f"have shape {dims}, {size} bytes; edgepack's limit for one tensor is "
                         f"{MAX_TENSOR_BYTES} bytes",
                         hint="check the input shapes in edgepack.toml")


def require_static_shapes(path_str: str, model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with every tensor's static shape inferred, or a ``ModelError`` that names the
    node where a shape starts to depend on the data."""
    try:
        inferred = infer_shapes(model, strict=True, data_prop=True)
    except Exception as exc:
        raise ModelError(f"{path_str}: shape inference failed: {one_line(exc)}") from exc
    g = inferred.graph
    known = {v.name: v for v in [*g.input, *g.value_info, *g.output]}
    constants = {i.name for i in g.initializer}
    producers = {o: n for n in g.node for o in n.output if o}
    for value in g.input:
        if value.name not in constants and not _static(value):
            raise ModelError(f"{path_str}: input {value.name!r} has no fixed shape",
                             hint="give every input a fixed `shape` in edgepack.toml")
    for node in g.node:  # graph order: the first dynamic tensor's node has static inputs
        for name in node.output:
            if not name or name in constants:
                continue
            if _static(known.get(name)):
                _check_size(path_str, node, known[name])
                continue
            inputs = ", ".join(repr(i) for i in node.input if i)
            raise ModelError(
                f"{path_str}: tensor {name!r} (output of {_label(node)}) has no static shape "
                f"after folding the shape computations for the given input shapes: "
                f"{_reason(node, producers, constants)}; it reaches "
                f"{_downstream(node, g)}",
                hint=(f"edgepack runs fixed-shape graphs: cut the model before {node.name!r} "
                      f"(make {inputs} its outputs) with `outputs = [{inputs}]` in its "
                      "[[models]] entry of edgepack.toml and do the rest in post-processing "
                      "(`[models.postprocess]`), or "
                      "re-export without this data-dependent step"),
            )
    return inferred

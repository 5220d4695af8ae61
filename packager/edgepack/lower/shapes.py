# SPDX-License-Identifier: Apache-2.0
"""Static shapes for lowering, including bounds for data-dependent outputs.

NonMaxSuppression and TopK-with-computed-K produce outputs whose dimension 0 depends on data.
They are cut out of a copy of the graph and their outputs fed back in as graph inputs at their
bound shape; ONNX shape inference then gives every downstream tensor its bound shape. Repeats
until every cut has a bound (a cut's own inputs may lie downstream of another cut).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

from edgepack.errors import ModelError

ONNX_DTYPES: dict[int, str] = {1: "float32", 2: "uint8", 6: "int32", 7: "int64", 9: "bool",
                               3: "int8", 5: "int16", 10: "float16", 4: "uint16", 12: "uint32",
                               13: "uint64", 11: "float64"}
TensorInfo = tuple[str, list[int], bool]  # dtype, static (bound) shape, dynamic_dim0


def _node_label(node: onnx.NodeProto) -> str:
    return f"op '{node.op_type}' (node '{node.name or node.output[0]}')"


def _is_data_dependent(node: onnx.NodeProto, consts: dict[str, Any]) -> bool:
    if node.op_type == "NonMaxSuppression":
        return True
    return node.op_type == "TopK" and node.input[1] not in consts


def _bounds(
    node: onnx.NodeProto, shapes: dict[str, list[int]], consts: dict[str, Any]
) -> dict[str, list[int]] | None:
    """Bound shapes of a data-dependent node's outputs, or None while its inputs are unknown."""
    if node.op_type == "NonMaxSuppression":
        if node.input[0] not in shapes or node.input[1] not in shapes:
            return None
        batch, num_boxes = shapes[node.input[0]][0], shapes[node.input[0]][1]
        classes = shapes[node.input[1]][1]
        per_class = 0
        if len(node.input) > 2 and node.input[2]:
            if node.input[2] not in consts:
                raise ModelError(
                    f"{_node_label(node)}: max_output_boxes_per_class must be constant"
                )
            per_class = int(np.asarray(consts[node.input[2]]).reshape(-1)[0])
        bound = batch * classes * min(max(per_class, 0), num_boxes)
        return {node.output[0]: [bound, 3]}
    x = shapes.get(node.input[0])
    if x is None:
        return None
    axis = next((a.i for a in node.attribute if a.name == "axis"), -1)
    axis = axis + len(x) if axis < 0 else axis
    if axis != 0:
        raise ModelError(
            f"{_node_label(node)}: a computed K is only supported along axis 0 "
            "(the runtime's dynamic dimension); make K a constant"
        )
    return {o: list(x) for o in node.output if o}


def _infer(
    model: onnx.ModelProto,
    nodes: list[onnx.NodeProto],
    consts: dict[str, Any],
    cut_inputs: dict[str, tuple[int, list[int]]],
) -> dict[str, tuple[int, list[int]]]:
    # Keep the nodes computable so far: not data-dependent, and fed only by known tensors
    # (downstream of a cut whose bound is still unknown waits for a later round).
    known = {i.name for i in model.graph.input} | set(consts) | set(cut_inputs)
    kept = []
    for n in nodes:
        if _is_data_dependent(n, consts) or not all(i in known for i in n.input if i):
            continue
        kept.append(n)
        known.update(o for o in n.output if o)
    used = {i for n in kept for i in n.input}
    inits = [numpy_helper.from_array(np.asarray(v), k) for k, v in consts.items() if k in used]
    init_names = {i.name for i in inits}
    inputs = [i for i in model.graph.input if i.name not in init_names]
    inputs += [helper.make_tensor_value_info(k, t, s) for k, (t, s) in cut_inputs.items()]
    g = helper.make_graph(kept, "shapes", inputs, [], inits)
    m = helper.make_model(g, opset_imports=list(model.opset_import))
    m.ir_version = model.ir_version
    try:
        inferred = shape_inference.infer_shapes(m, strict_mode=True, data_prop=True)
    except Exception as exc:  # onnx raises its own InferenceError types
        raise ModelError(f"shape inference failed: {exc}") from exc
    out: dict[str, tuple[int, list[int]]] = {}
    for vi in [*inferred.graph.input, *inferred.graph.value_info]:
        tt = vi.type.tensor_type
        if tt.HasField("shape"):
            dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tt.shape.dim]
            out[vi.name] = (tt.elem_type, dims)
    return out


def infer_with_bounds(
    model: onnx.ModelProto, nodes: list[onnx.NodeProto], consts: dict[str, Any],
    dynamic_inputs: Collection[str] = (),
) -> dict[str, TensorInfo]:
    cuts = [n for n in nodes if _is_data_dependent(n, consts)]
    cut_inputs: dict[str, tuple[int, list[int]]] = {}
    for _ in range(len(cuts) + 1):
        known = _infer(model, nodes, consts, cut_inputs)
        shapes = {k: s for k, (_, s) in known.items() if all(d >= 0 for d in s)}
        progressed = False
        for node in cuts:
            if node.output[0] in cut_inputs:
                continue
            bounds = _bounds(node, shapes, consts)
            if bounds is None:
                continue
            for i, (name, shape) in enumerate(bounds.items()):
                elem: int
                if node.op_type == "NonMaxSuppression" or i == 1:
                    elem = onnx.TensorProto.INT64
                else:
                    elem = known.get(node.input[0], (onnx.TensorProto.FLOAT, []))[0]
                cut_inputs[name] = (elem, shape)
            progressed = True
        if not progressed:
            break
    # Dynamic propagation: anything computed from a cut output.
    dynamic = set(cut_inputs) | set(dynamic_inputs)
    for n in nodes:
        if any(i in dynamic for i in n.input if i):
            dynamic.update(o for o in n.output if o)
    info: dict[str, TensorInfo] = {}
    for name, (elem_type, shape) in known.items():
        if any(d < 0 for d in shape):
            continue
        if elem_type not in ONNX_DTYPES:
            kind = onnx.TensorProto.DataType.Name(elem_type) if elem_type else "no type"
            raise ModelError(
                f"tensor '{name}' has dtype {kind}, which the CPU runtime does not support "
                f"({', '.join(sorted(set(ONNX_DTYPES.values())))})"
            )
        info[name] = (ONNX_DTYPES[elem_type], shape, name in dynamic)
    for name, value in consts.items():
        arr = np.asarray(value)
        code = int(helper.np_dtype_to_tensor_dtype(arr.dtype))
        if code in ONNX_DTYPES:
            info[name] = (ONNX_DTYPES[code], list(arr.shape), False)
    for name in dynamic:
        if name in info and not info[name][1]:
            raise ModelError(f"tensor '{name}' depends on data but has rank 0")
    return info

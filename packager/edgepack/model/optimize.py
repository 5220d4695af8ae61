# SPDX-License-Identifier: Apache-2.0
"""Graph passes over ``onnx.ModelProto``: each pass is one small function that edits the model
in place and returns how many things it changed (``einsum_to_matmul`` and
``conv_transpose_3d`` live in model/einsum.py and model/conv_transpose3d.py). ``optimize`` runs
them to a fixed point; ``equivalence.check_equivalent`` proves the result numerically against
onnxruntime.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from edgepack.model.conv_transpose3d import conv_transpose_3d
from edgepack.model.einsum import einsum_to_matmul

# Ops whose result is not a function of their inputs: never folded.
_NONDETERMINISTIC = {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike",
                     "Multinomial", "Bernoulli"}
# A folded constant larger than this stays a node (e.g. a broadcast that would bloat the file).
_MAX_FOLDED_ELEMENTS = 1 << 22
# Ops whose output size is read from their input values: folded only when it is known.
_SIZED_BY_VALUES = {"ConstantOfShape", "Expand", "Tile", "Range", "Resize", "Upsample", "Pad",
                    "OneHot", "MatMul", "Gemm", "Einsum", "ConvTranspose", "CenterCropPad"}
# Initializers up to this size keep their values during shape inference (shape constants).
_SHAPE_VALUE_LIMIT = 64


def _consumers(graph: onnx.GraphProto) -> dict[str, list[onnx.NodeProto]]:
    users: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            if name:
                users.setdefault(name, []).append(node)
    return users


def _graph_outputs(graph: onnx.GraphProto) -> set[str]:
    return {o.name for o in graph.output}


def _rename_input(graph: onnx.GraphProto, old: str, new: str) -> None:
    for node in graph.node:
        node.input[:] = [new if i == old else i for i in node.input]


def _unique_name(graph: onnx.GraphProto, base: str) -> str:
    taken = {i.name for i in graph.initializer} | {o for n in graph.node for o in n.output}
    taken |= {i.name for i in graph.input}
    name, n = base, 0
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    return name


def _is_passthrough(node: onnx.NodeProto, constants: dict[str, np.ndarray]) -> bool:
    if node.op_type == "Identity":
        return True
    if node.op_type != "Dropout":
        return False
    # Dropout is a pass-through at inference unless training_mode is a true constant; the
    # optional mask output must be unused.
    if len(node.input) >= 3 and node.input[2]:
        mode = constants.get(node.input[2])
        if mode is None or bool(mode):
            return False
    return True


def remove_identity(model: onnx.ModelProto) -> int:
    """Remove Identity and inference-mode Dropout by rewiring their consumers."""
    graph = model.graph
    constants = _initializer_arrays(graph)
    outputs = _graph_outputs(graph)
    users = _consumers(graph)
    removed = 0
    for node in list(graph.node):
        if not _is_passthrough(node, constants):
            continue
        src, dst = node.input[0], node.output[0]
        if len(node.output) > 1 and node.output[1] and (
            node.output[1] in users or node.output[1] in outputs
        ):
            continue
        if dst in outputs:
            # Keep the public output name: let the producer of src write it directly.
            producer = next((n for n in graph.node if src in n.output), None)
            if producer is None or src in outputs or len(users.get(src, [])) > 1:
                continue
            producer.output[:] = [dst if o == src else o for o in producer.output]
        else:
            _rename_input(graph, dst, src)
        graph.node.remove(node)
        users = _consumers(graph)
        removed += 1
    return removed


def _initializer_arrays(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    return {init.name: numpy_helper.to_array(init) for init in graph.initializer}


def shape_skeleton(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with its large initializers turned into typed graph inputs: shape inference
    needs their shapes, not their bytes (and serialising the weights each round is slow)."""
    g = model.graph
    small = [i for i in g.initializer if int(np.prod(i.dims)) <= _SHAPE_VALUE_LIMIT]
    large = [helper.make_tensor_value_info(i.name, i.data_type, list(i.dims))
             for i in g.initializer if int(np.prod(i.dims)) > _SHAPE_VALUE_LIMIT]
    inits = {i.name for i in g.initializer}
    graph = helper.make_graph(list(g.node), g.name,
                              [v for v in g.input if v.name not in inits] + large,
                              list(g.output), small)
    skeleton = helper.make_model(graph, opset_imports=list(model.opset_import))
    skeleton.ir_version = max(model.ir_version, 4)
    skeleton.functions.extend(model.functions)
    return skeleton


def infer_shapes(model: onnx.ModelProto, *, strict: bool = False,
                 data_prop: bool = False) -> onnx.ModelProto:
    """``onnx.shape_inference.infer_shapes`` without serialising the weights: a copy of the
    model with the inferred value_info and outputs of its skeleton."""
    inferred = onnx.shape_inference.infer_shapes(shape_skeleton(model), strict_mode=strict,
                                                 data_prop=data_prop)
    out = onnx.ModelProto()
    out.CopyFrom(model)
    del out.graph.value_info[:]
    out.graph.value_info.extend(inferred.graph.value_info)
    del out.graph.output[:]
    out.graph.output.extend(inferred.graph.output)
    return out


def static_shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    """Every tensor whose shape onnx infers as static, with data propagation (Shape -> Gather
    -> Concat chains reach the Reshape they feed)."""
    inferred = onnx.shape_inference.infer_shapes(shape_skeleton(model), data_prop=True)
    shapes: dict[str, tuple[int, ...]] = {}
    g = inferred.graph
    for value in [*g.input, *g.value_info, *g.output]:
        t = value.type.tensor_type
        if not t.HasField("shape"):
            continue
        dims = t.shape.dim
        if all(d.HasField("dim_value") for d in dims):
            shapes[value.name] = tuple(int(d.dim_value) for d in dims)
    for init in model.graph.initializer:
        shapes[init.name] = tuple(init.dims)
    return shapes


def _elem_types(model: onnx.ModelProto) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(shape_skeleton(model))
    g = inferred.graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*g.input, *g.value_info, *g.output]}
    types.update({i.name: i.data_type for i in model.graph.initializer})
    return {name: t for name, t in types.items() if t}


def fold_shapes(model: onnx.ModelProto) -> int:
    """Replace Shape of a statically shaped tensor by a constant (folding finishes the chain)."""
    graph = model.graph
    shapes = static_shapes(model)
    folded = 0
    outputs = _graph_outputs(graph)
    for node in list(graph.node):
        if node.op_type != "Shape" or node.input[0] not in shapes or node.output[0] in outputs:
            continue
        dims = np.array(shapes[node.input[0]], dtype=np.int64)
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        start = int(attrs.get("start", 0))
        end = attrs.get("end")
        dims = dims[start:] if end is None else dims[start:int(end)]
        graph.initializer.append(numpy_helper.from_array(dims, node.output[0]))
        graph.node.remove(node)
        folded += 1
    return folded


def _evaluate_node(node: onnx.NodeProto, values: dict[str, np.ndarray],
                   opset: list[onnx.OperatorSetIdProto]) -> list[np.ndarray]:
    """Run one node with onnx's reference evaluator on a one-node graph."""
    inputs = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(values[n].dtype),
                                            values[n].shape) for n in node.input if n]
    outputs = [helper.make_empty_tensor_value_info(o) for o in node.output if o]
    graph = helper.make_graph([node], "fold", inputs, outputs)
    model = helper.make_model(graph, opset_imports=opset)
    feeds = {n: values[n] for n in node.input if n}
    return [np.asarray(r) for r in ReferenceEvaluator(model).run(None, feeds)]


def _fits(node: onnx.NodeProto, values: dict[str, np.ndarray],
          opset: list[onnx.OperatorSetIdProto]) -> bool:
    """Whether every output of ``node`` is known, before evaluating it, to stay within
    ``_MAX_FOLDED_ELEMENTS``: sizes read from a model (ConstantOfShape, Expand, Tile, Range,
    Resize, Pad, MatMul of two constants) are checked before anything is allocated."""
    small = [numpy_helper.from_array(values[n], n) for n in node.input
             if n and values[n].size <= _SHAPE_VALUE_LIMIT]
    typed = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(values[n].dtype),
                                           values[n].shape)
             for n in node.input if n and values[n].size > _SHAPE_VALUE_LIMIT]
    graph = helper.make_graph([node], "size", typed,
                              [helper.make_empty_tensor_value_info(o) for o in node.output if o],
                              small)
    try:
        inferred = onnx.shape_inference.infer_shapes(
            helper.make_model(graph, opset_imports=opset), strict_mode=True)
    except Exception:
        return False
    for value in inferred.graph.output:
        t = value.type.tensor_type
        if not t.HasField("shape") or not all(d.HasField("dim_value") for d in t.shape.dim):
            # unknown: fine for ops whose output is bounded by their inputs (NonZero, ...)
            return node.op_type not in _SIZED_BY_VALUES
        if int(np.prod([d.dim_value for d in t.shape.dim], dtype=np.float64)) > (
            _MAX_FOLDED_ELEMENTS
        ):
            return False
    return True


def fold_constants(model: onnx.ModelProto) -> int:
    """Evaluate nodes whose inputs are all constants and store the results as initializers."""
    graph = model.graph
    values = _initializer_arrays(graph)
    outputs = _graph_outputs(graph)
    folded = 0
    for node in list(graph.node):  # graph order is topological
        if node.op_type in _NONDETERMINISTIC or node.domain not in ("", "ai.onnx"):
            continue
        if any(o in outputs for o in node.output):
            continue
        if not all(i in values for i in node.input if i):
            continue
        if not _fits(node, values, list(model.opset_import)):
            continue
        try:
            results = _evaluate_node(node, values, list(model.opset_import))
        except Exception:  # the reference evaluator lacks the op or rejects it: keep the node
            continue
        if any(r.size > _MAX_FOLDED_ELEMENTS for r in results):
            continue
        for name, result in zip([o for o in node.output if o], results, strict=True):
            values[name] = result
            graph.initializer.append(numpy_helper.from_array(result, name))
        graph.node.remove(node)
        folded += 1
    return folded


def canonicalize(model: onnx.ModelProto) -> int:
    """Rewrite ops that function bodies (Gelu, Mish, ...) and exporters use into the ops they
    stand for: CastLike with a known target type becomes Cast, a Cast to the type its input
    already has becomes Identity, Sum becomes a chain of Adds."""
    graph = model.graph
    types: dict[str, int] | None = None
    changed = 0
    for node in list(graph.node):
        if node.op_type == "CastLike":
            types = _elem_types(model) if types is None else types
            target = types.get(node.input[1])
            if target is None:
                continue
            saturate = [a for a in node.attribute if a.name == "saturate"]
            cast = helper.make_node("Cast", [node.input[0]], list(node.output), name=node.name,
                                    to=target)
            cast.attribute.extend(saturate)
            node.CopyFrom(cast)
            changed += 1
        elif node.op_type == "Cast" and node.input[0] not in _graph_outputs(graph):
            types = _elem_types(model) if types is None else types
            to = next((a.i for a in node.attribute if a.name == "to"), None)
            if to is None or types.get(node.input[0]) != to:
                continue
            node.CopyFrom(helper.make_node("Identity", [node.input[0]], list(node.output),
                                           name=node.name))
            changed += 1
        elif node.op_type == "Sum":
            terms = [i for i in node.input if i]
            if len(terms) == 1:
                node.CopyFrom(helper.make_node("Identity", terms, list(node.output),
                                               name=node.name))
            else:
                at = list(graph.node).index(node)
                acc = terms[0]
                for k, term in enumerate(terms[1:], start=1):
                    last = k == len(terms) - 1
                    out = node.output[0] if last else _unique_name(graph, f"{node.name}/sum{k}")
                    graph.node.insert(at + k, helper.make_node(
                        "Add", [acc, term], [out], name=f"{node.name}/add{k}" if k > 1 else
                        node.name))
                    acc = out
                graph.node.remove(node)
            changed += 1
    return changed


def fold_batchnorm(model: onnx.ModelProto) -> int:
    """Fold inference BatchNormalization into the Conv that feeds it (and only it)."""
    graph = model.graph
    values = _initializer_arrays(graph)
    outputs = _graph_outputs(graph)
    users = _consumers(graph)
    producers = {o: n for n in graph.node for o in n.output}
    folded = 0
    for bn in list(graph.node):
        if bn.op_type != "BatchNormalization" or len([o for o in bn.output if o]) != 1:
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in bn.attribute}
        if attrs.get("training_mode", 0):
            continue
        conv = producers.get(bn.input[0])
        if conv is None or conv.op_type != "Conv" or bn.input[0] in outputs:
            continue
        if len(users.get(bn.input[0], [])) != 1 or conv.input[1] not in values:
            continue
        has_bias = len(conv.input) > 2 and bool(conv.input[2])
        if has_bias and conv.input[2] not in values:
            continue
        if not all(n in values for n in bn.input[1:5]):
            continue
        gamma, beta, mean, var = (values[n].astype(np.float64) for n in bn.input[1:5])
        scale = gamma / np.sqrt(var + float(attrs.get("epsilon", 1e-5)))
        w = values[conv.input[1]]
        b = values[conv.input[2]].astype(np.float64) if has_bias else np.zeros(w.shape[0])
        new_w = (w.astype(np.float64) * scale.reshape(-1, *([1] * (w.ndim - 1)))).astype(w.dtype)
        new_b = ((b - mean) * scale + beta).astype(w.dtype)
        w_name = _unique_name(graph, conv.input[1] + "_bnfold")
        graph.initializer.append(numpy_helper.from_array(new_w, w_name))
        b_name = _unique_name(graph, (conv.input[2] if has_bias else conv.name) + "_bnfold_b")
        graph.initializer.append(numpy_helper.from_array(new_b, b_name))
        conv.input[:] = [conv.input[0], w_name, b_name]
        conv.output[0] = bn.output[0]
        graph.node.remove(bn)
        values[w_name], values[b_name] = new_w, new_b
        folded += 1
    return folded


def remove_dead(model: onnx.ModelProto) -> int:
    """Remove nodes that no graph output depends on, then unused initializers."""
    graph = model.graph
    needed = _graph_outputs(graph)
    removed = 0
    for node in reversed(list(graph.node)):
        if any(o in needed for o in node.output):
            needed.update(i for i in node.input if i)
        else:
            graph.node.remove(node)
            removed += 1
    used = {i for n in graph.node for i in n.input} | _graph_outputs(graph)
    for init in list(graph.initializer):
        if init.name not in used:
            graph.initializer.remove(init)
            removed += 1
    live = {o for n in graph.node for o in n.output}
    for vi in list(graph.value_info):
        if vi.name not in live:
            graph.value_info.remove(vi)
    return removed


PASSES: tuple[tuple[str, Callable[[onnx.ModelProto], int]], ...] = (
    ("canonicalize", canonicalize),
    ("remove_identity", remove_identity),
    ("fold_shapes", fold_shapes),
    ("fold_constants", fold_constants),
    ("fold_batchnorm", fold_batchnorm),
    ("einsum_to_matmul", einsum_to_matmul),
    ("conv_transpose_3d", conv_transpose_3d),
    ("remove_dead", remove_dead),
)


def optimize(model: onnx.ModelProto,
             max_rounds: int = 64) -> tuple[onnx.ModelProto, dict[str, int]]:
    """Run every pass until nothing changes; returns a new model and the counts per pass.
    Each round exposes more static shapes (a folded Reshape makes the next Shape constant), so
    a deep network may take as many rounds as it has such chained blocks."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    report = {name: 0 for name, _ in PASSES}
    for _ in range(max_rounds):
        changed = 0
        for name, run_pass in PASSES:
            n = run_pass(out)
            report[name] += n
            changed += n
        if not changed:
            break
    # Refresh intermediate shapes: folding removed tensors and renamed others.
    del out.graph.value_info[:]
    return infer_shapes(out, strict=True), report

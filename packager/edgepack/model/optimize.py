# SPDX-License-Identifier: Apache-2.0
"""Graph passes over ``onnx.ModelProto``: each pass is one small function that edits the model
in place and returns how many things it changed. ``optimize`` runs them to a fixed point and
``check_equivalent`` proves the result numerically against onnxruntime.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

# Ops whose result is not a function of their inputs: never folded.
_NONDETERMINISTIC = {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike",
                     "Multinomial", "Bernoulli"}
# A folded constant larger than this stays a node (e.g. a broadcast that would bloat the file).
_MAX_FOLDED_ELEMENTS = 1 << 22


class EquivalenceError(AssertionError):
    """The optimised graph computes something else: a bug in a pass, never a user mistake."""


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


def _static_shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes: dict[str, tuple[int, ...]] = {}
    g = inferred.graph
    for value in [*g.input, *g.value_info, *g.output]:
        t = value.type.tensor_type
        if not t.HasField("shape"):
            continue
        dims = t.shape.dim
        if all(d.HasField("dim_value") for d in dims):
            shapes[value.name] = tuple(int(d.dim_value) for d in dims)
    for init in g.initializer:
        shapes[init.name] = tuple(init.dims)
    return shapes


def fold_shapes(model: onnx.ModelProto) -> int:
    """Replace Shape of a statically shaped tensor by a constant (folding finishes the chain)."""
    graph = model.graph
    shapes = _static_shapes(model)
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
        results = _evaluate_node(node, values, list(model.opset_import))
        if any(r.size > _MAX_FOLDED_ELEMENTS for r in results):
            continue
        for name, result in zip([o for o in node.output if o], results, strict=True):
            values[name] = result
            graph.initializer.append(numpy_helper.from_array(result, name))
        graph.node.remove(node)
        folded += 1
    return folded


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
    ("remove_identity", remove_identity),
    ("fold_shapes", fold_shapes),
    ("fold_constants", fold_constants),
    ("fold_batchnorm", fold_batchnorm),
    ("remove_dead", remove_dead),
)


def optimize(model: onnx.ModelProto, max_rounds: int = 8) -> tuple[onnx.ModelProto, dict[str, int]]:
    """Run every pass until nothing changes; returns a new model and the counts per pass."""
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
    out = onnx.shape_inference.infer_shapes(out, strict_mode=True)
    return out, report


def random_feeds(model: onnx.ModelProto, seed: int) -> dict[str, np.ndarray]:
    """Seeded random inputs of the right dtype and (static) shape for every graph input."""
    rng = np.random.default_rng(seed)
    inits = {i.name for i in model.graph.initializer}
    feeds: dict[str, np.ndarray] = {}
    for value in model.graph.input:
        if value.name in inits:
            continue
        t = value.type.tensor_type
        dtype = helper.tensor_dtype_to_np_dtype(t.elem_type)
        shape = tuple(max(int(d.dim_value), 1) for d in t.shape.dim)
        if np.issubdtype(dtype, np.floating):
            feeds[value.name] = rng.standard_normal(shape).astype(dtype)
        else:
            feeds[value.name] = rng.integers(0, 256, shape).astype(dtype)
    return feeds


def run_onnxruntime(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    results: list[Any] = session.run(None, feeds)
    return [np.asarray(r) for r in results]


def check_equivalent(before: onnx.ModelProto, after: onnx.ModelProto, seed: int = 0,
                     rtol: float = 1e-4, atol: float = 1e-4) -> dict[str, float]:
    """Run both models under onnxruntime on the same seeded inputs; returns max-abs diff per
    output and raises ``EquivalenceError`` when any output differs beyond the tolerances."""
    feeds = random_feeds(before, seed)
    names = [o.name for o in before.graph.output]
    if names != [o.name for o in after.graph.output]:
        raise EquivalenceError(f"outputs differ: {names} vs {[o.name for o in after.graph.output]}")
    diffs: dict[str, float] = {}
    for name, a, b in zip(names, run_onnxruntime(before, feeds), run_onnxruntime(after, feeds),
                          strict=True):
        if a.shape != b.shape:
            raise EquivalenceError(f"output {name!r}: shape {a.shape} became {b.shape}")
        diff = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0
        diffs[name] = diff
        if not np.allclose(a, b, rtol=rtol, atol=atol):
            raise EquivalenceError(
                f"optimised graph differs on output {name!r}: max abs diff {diff:.3g} "
                f"(rtol {rtol}, atol {atol})"
            )
    return diffs

# SPDX-License-Identifier: Apache-2.0
"""Cutting a model at named tensors (``outputs = [...]`` in a ``[[models]]`` entry).

An export often ends in post-processing edgepack cannot run as a fixed-shape graph (NonZero,
If, Loop: torchvision's detection exports, score thresholds before NMS). Cutting keeps the
nodes the named tensors need and makes those tensors the graph outputs; edgepack's own
postprocess (``[models.postprocess]``) then finishes the job.
"""

from __future__ import annotations

import difflib

import onnx
from onnx import helper

from edgepack.errors import ModelError
from edgepack.model.diagnostics import one_line


def tensor_names(graph: onnx.GraphProto) -> list[str]:
    """Every tensor a cut may end at: graph inputs and node outputs, in graph order."""
    inits = {i.name for i in graph.initializer}
    names = [v.name for v in graph.input if v.name not in inits]
    names += [o for n in graph.node for o in n.output if o]
    return names


def unknown_tensor_message(name: str, graph: onnx.GraphProto) -> str:
    """'model has no tensor ...' with the closest names, for the spec loader and ingest."""
    close = difflib.get_close_matches(name, tensor_names(graph), n=3, cutoff=0.6)
    hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
    return f"model has no tensor {name!r} to end at{hint}"


def cut_model(path_str: str, model: onnx.ModelProto, outputs: tuple[str, ...]) -> onnx.ModelProto:
    """A copy of ``model`` whose outputs are ``outputs``, with only the nodes, initializers
    and inputs they depend on. Inputs no longer used are dropped."""
    graph = model.graph
    known = set(tensor_names(graph))
    for name in outputs:
        if name not in known:
            raise ModelError(f"{path_str}: {unknown_tensor_message(name, graph)}",
                             hint="`outputs` in [[models]] names tensors of the graph")
    try:  # element types (and shapes where known) of the new outputs
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception as exc:
        raise ModelError(f"{path_str}: shape inference failed before cutting the model: "
                         f"{one_line(exc)}") from exc
    values = {v.name: v for v in [*inferred.graph.input, *inferred.graph.value_info,
                                  *inferred.graph.output]}
    producer = {o: i for i, n in enumerate(graph.node) for o in n.output if o}
    needed: set[str] = set()
    keep: set[int] = set()
    stack = list(outputs)
    while stack:
        name = stack.pop()
        if name in needed:
            continue
        needed.add(name)
        index = producer.get(name)
        if index is not None and index not in keep:
            keep.add(index)
            stack.extend(i for i in graph.node[index].input if i)
            for attr in graph.node[index].attribute:  # subgraphs read outer tensors by name
                for sub in [attr.g, *attr.graphs]:
                    stack.extend(i for n in sub.node for i in n.input if i)
    out_values = []
    for name in outputs:
        value = values.get(name)
        if value is None or not value.type.tensor_type.elem_type:
            raise ModelError(f"{path_str}: cannot tell the element type of tensor {name!r} "
                             "to end the model at", hint="end the model at a tensor before "
                             "any If/Loop/custom node")
        out_values.append(value)
    cut = helper.make_graph(
        [n for i, n in enumerate(graph.node) if i in keep],
        graph.name,
        [v for v in graph.input if v.name in needed],
        out_values,
        [t for t in graph.initializer if t.name in needed],
        value_info=[v for v in graph.value_info if v.name in needed],
    )
    result = onnx.ModelProto()
    result.CopyFrom(model)
    result.graph.CopyFrom(cut)
    return result

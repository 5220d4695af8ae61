# SPDX-License-Identifier: Apache-2.0
"""Model ingest: load (external data beside the model), check, fix input shapes, bring the
opset to 17, fold shape computations, require static shapes, optimise, and prove the result
against the user's original graph under onnxruntime.

Every problem is one ``ModelError`` naming the model file; that includes a mismatch between the
original and the converted graph (an edgepack bug, said so in the message).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import onnx
import onnx.inliner

from edgepack.errors import ModelError
from edgepack.lower.capabilities import missing_ops_message, runtime_ops
from edgepack.model.cut import cut_model
from edgepack.model.diagnostics import one_line
from edgepack.model.equivalence import EquivalenceError, OnnxruntimeFailed, check_equivalent
from edgepack.model.loading import load_model_file
from edgepack.model.opset import ACCEPTED_OPSETS, CANONICAL_OPSET, STANDARD_DOMAINS, to_canonical
from edgepack.model.optimize import optimize
from edgepack.model.quantize import QuantizedModel, quantize_model
from edgepack.model.shapes import require_static_shapes
from edgepack.model.tensors import ONNX_TO_DTYPE, TensorDesc, describe_value
from edgepack.spec.project import ModelSpec

# The ops the edgepack CPU runtime implements (docs/adding-an-op.md).
RUNTIME_OPS = runtime_ops()  # the capability table, lower/op_table.toml


@dataclass(frozen=True)
class IngestedModel:
    spec: ModelSpec
    onnx: onnx.ModelProto  # optimised, opset 17, every tensor statically shaped
    source_opset: int  # the ai.onnx opset the file declared
    opset: int
    inputs: tuple[TensorDesc, ...]
    outputs: tuple[TensorDesc, ...]
    ops: tuple[tuple[str, str], ...]  # (op_type, node name) in graph order
    sha256: str  # of the file as read
    optimize_report: dict[str, int] = field(default_factory=dict)
    max_abs_diff: dict[str, float] = field(default_factory=dict)  # optimised vs original
    data_files: dict[str, str] = field(default_factory=dict)  # external data file -> sha256
    quantization: QuantizedModel | None = None  # [models.quantize]: `onnx` is the quantised graph

    @property
    def name(self) -> str:
        return self.spec.name


def _inline_local_functions(path_str: str, model: onnx.ModelProto) -> onnx.ModelProto:
    """Model-local functions (torch's dynamo exporter may keep some) inlined; the opset imports
    of the domains only they used are dropped."""
    if not model.functions:
        return model
    try:
        inlined = onnx.inliner.inline_local_functions(model)
    except Exception as exc:
        raise ModelError(f"{path_str}: cannot inline the model's local functions: "
                         f"{one_line(exc)}") from exc
    used = {n.domain for n in inlined.graph.node} | set(STANDARD_DOMAINS)
    keep = [imp for imp in inlined.opset_import if imp.domain in used]
    del inlined.opset_import[:]
    inlined.opset_import.extend(keep)
    del inlined.functions[:]
    return inlined


def _ai_onnx_opset(path_str: str, model: onnx.ModelProto) -> int:
    version = None
    for imp in model.opset_import:
        if imp.domain in STANDARD_DOMAINS:
            version = int(imp.version)
        else:
            raise ModelError(
                f"{path_str}: uses the non-standard operator domain {imp.domain!r}; edgepack "
                "accepts only standard ONNX (ai.onnx) operators"
            )
    for node in model.graph.node:
        if node.domain not in STANDARD_DOMAINS:
            raise ModelError(f"{path_str}: node {node.name!r} ({node.op_type}) is in the "
                             f"non-standard domain {node.domain!r}")
    if version is None:
        raise ModelError(f"{path_str}: declares no ai.onnx opset")
    if version not in ACCEPTED_OPSETS:
        raise ModelError(
            f"{path_str}: opset {version} is outside the accepted range "
            f"{ACCEPTED_OPSETS.start}..{ACCEPTED_OPSETS.stop - 1}",
            hint=f"re-export the model with opset {CANONICAL_OPSET}",
        )
    return version


def _optimise(path_str: str, model: onnx.ModelProto) -> tuple[onnx.ModelProto, dict[str, int]]:
    try:
        return optimize(model)
    except onnx.shape_inference.InferenceError as exc:
        raise ModelError(f"{path_str}: shape inference failed: {one_line(exc)}") from exc
    except Exception as exc:  # never a traceback for a model: say whose fault it may be
        raise ModelError(f"{path_str}: optimising the graph failed: "
                         f"{type(exc).__name__}: {one_line(exc)}",
                         hint="if the model runs under onnxruntime, this is an edgepack bug: "
                         "please report it with the model") from exc


def _check_against_original(path_str: str, original: onnx.ModelProto,
                            optimised: onnx.ModelProto, seed: int) -> dict[str, float]:
    try:
        return check_equivalent(original, optimised, seed=seed)
    except OnnxruntimeFailed as exc:
        if exc.which == "original":
            raise ModelError(f"{path_str}: onnxruntime cannot run the model: {exc}") from exc
        raise ModelError(f"{path_str}: onnxruntime cannot run the graph edgepack made from "
                         f"the model: {exc}", hint="this is an edgepack bug: please report it "
                         "with the model") from exc
    except EquivalenceError as exc:
        raise ModelError(f"{path_str}: the graph edgepack made from the model does not match "
                         f"the original under onnxruntime: {exc}",
                         hint="this is an edgepack bug: please report it with the model") from exc


def _graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    inits = {i.name for i in model.graph.initializer}
    return [v for v in model.graph.input if v.name not in inits]


def _fix_input_shapes(path_str: str, model: onnx.ModelProto, spec: ModelSpec) -> None:
    inputs = {v.name: v for v in _graph_inputs(model)}
    for inp in spec.inputs:
        if inp.name not in inputs:
            raise ModelError(f"{path_str}: model {spec.name!r} has no input {inp.name!r}; "
                             f"its inputs are: {', '.join(inputs) or '(none)'}")
        dims = inputs[inp.name].type.tensor_type.shape.dim
        if len(dims) != len(inp.shape):
            raise ModelError(f"{path_str}: input {inp.name!r} has rank {len(dims)} but the "
                             f"spec gives shape {list(inp.shape)}")
        for axis, (dim, want) in enumerate(zip(dims, inp.shape, strict=True)):
            if dim.HasField("dim_value") and dim.dim_value not in (0, want):
                raise ModelError(f"{path_str}: input {inp.name!r} dimension {axis} is "
                                 f"{dim.dim_value} in the model but {want} in the spec")
            dim.Clear()
            dim.dim_value = want


def _describe(path_str: str, values: list[onnx.ValueInfoProto],
              layouts: dict[str, str]) -> tuple[TensorDesc, ...]:
    out = []
    for v in values:
        if v.type.tensor_type.elem_type not in ONNX_TO_DTYPE:
            raise ModelError(f"{path_str}: tensor {v.name!r} has element type "
                             f"{v.type.tensor_type.elem_type}; supported: "
                             f"{', '.join(ONNX_TO_DTYPE.values())}")
        out.append(describe_value(v, layouts.get(v.name)))
    return tuple(out)


def _name_nodes(model: onnx.ModelProto) -> None:
    """Give unnamed nodes a unique name: runtime errors and reports refer to nodes by name."""
    taken = {n.name for n in model.graph.node if n.name}
    for i, node in enumerate(model.graph.node):
        if not node.name:
            name = f"{node.op_type}_{i}"
            while name in taken:
                name += "_"
            node.name = name
            taken.add(name)


def _check_ops(path_str: str, model: onnx.ModelProto) -> None:
    missing = missing_ops_message(n.op_type for n in model.graph.node)
    if missing:
        raise ModelError(f"{path_str}: ops the edgepack runtime does not implement remain "
                         f"after optimisation: {missing}")


def ingest_model(model: ModelSpec, *, check_seed: int = 0) -> IngestedModel:
    """Load, check, convert, shape, optimise and verify one model of the spec."""
    path_str = str(model.path)
    loaded = load_model_file(model.path)
    proto = _inline_local_functions(path_str, loaded.proto)
    source_opset = _ai_onnx_opset(path_str, proto)  # first: the checker knows no custom domains
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as exc:
        raise ModelError(f"{path_str}: ONNX checker failed: {one_line(exc)}") from exc
    _name_nodes(proto)
    _fix_input_shapes(path_str, proto, model)
    if model.outputs is not None:  # `outputs = [...]`: end the model at these tensors
        proto = cut_model(path_str, proto, model.outputs)
    _describe(path_str, _graph_inputs(proto), {})  # input dtypes the runtime can feed
    original = onnx.ModelProto()
    original.CopyFrom(proto)
    proto = to_canonical(path_str, proto, source_opset)
    optimised, report = _optimise(path_str, proto)
    optimised = require_static_shapes(path_str, optimised)
    outputs = {o.name for o in optimised.graph.output}
    if model.postprocess is not None and model.postprocess.output not in outputs:
        raise ModelError(f"{path_str}: postprocess output {model.postprocess.output!r} is not "
                         f"an output of model {model.name!r}; its outputs are: "
                         f"{', '.join(sorted(outputs))}")
    diffs = _check_against_original(path_str, original, optimised, check_seed)
    _check_ops(path_str, optimised)
    layouts = {i.name: ("NCHW" if i.preprocess.layout == "nchw" else "NHWC")
               for i in model.inputs if i.preprocess is not None}
    inputs = _describe(path_str, _graph_inputs(optimised), layouts)
    quantized = None
    if model.quantize is not None:
        quantized = quantize_model(optimised, model, inputs)
        optimised = quantized.onnx
        _check_ops(path_str, optimised)
    return IngestedModel(
        spec=model,
        onnx=optimised,
        source_opset=source_opset,
        opset=CANONICAL_OPSET,
        inputs=inputs,
        outputs=_describe(path_str, list(optimised.graph.output), {}),
        ops=tuple((n.op_type, n.name) for n in optimised.graph.node),
        sha256=loaded.sha256,
        optimize_report=report,
        max_abs_diff=diffs,
        data_files=loaded.data_files,
        quantization=quantized,
    )

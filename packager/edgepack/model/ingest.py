# SPDX-License-Identifier: Apache-2.0
"""Model ingest: check, pin the opset to 17, fix input shapes, infer static shapes, optimise,
and prove the optimised graph against the original under onnxruntime.

Every problem with the user's model is a ``ModelError`` naming the file; a mismatch between the
graph before and after optimisation is a bug (``optimize.EquivalenceError``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import onnx
from onnx import version_converter

from edgepack.errors import ModelError
from edgepack.lower.capabilities import missing_ops_message, runtime_ops
from edgepack.model.optimize import check_equivalent, optimize
from edgepack.model.tensors import ONNX_TO_DTYPE, TensorDesc, describe_value
from edgepack.spec.project import ModelSpec

CANONICAL_OPSET = 17
ACCEPTED_OPSETS = range(11, 22)  # ai.onnx 11..21, converted to 17
STANDARD_DOMAINS = ("", "ai.onnx")

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

    @property
    def name(self) -> str:
        return self.spec.name


def _load(path_str: str, data: bytes) -> onnx.ModelProto:
    try:
        return onnx.load_from_string(data)
    except Exception as exc:  # protobuf raises DecodeError and friends
        raise ModelError(f"{path_str}: not an ONNX model ({exc})") from exc


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


def _convert(path_str: str, model: onnx.ModelProto, opset: int) -> onnx.ModelProto:
    if opset == CANONICAL_OPSET:
        return model
    try:
        converted = version_converter.convert_version(model, CANONICAL_OPSET)
    except Exception as exc:
        raise ModelError(
            f"{path_str}: cannot convert from opset {opset} to {CANONICAL_OPSET}: {exc}",
            hint=f"re-export the model with opset {CANONICAL_OPSET}",
        ) from exc
    return converted


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


def _infer_shapes(path_str: str, model: onnx.ModelProto) -> onnx.ModelProto:
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except Exception as exc:
        raise ModelError(f"{path_str}: shape inference failed: {exc}") from exc
    g = inferred.graph
    known = {v.name: v for v in [*g.input, *g.value_info, *g.output]}
    inits = {i.name for i in g.initializer}
    for node in g.node:
        for name in node.output:
            if not name or name in inits:
                continue
            value = known.get(name)
            tensor = value.type.tensor_type if value is not None else None
            if tensor is None or not tensor.HasField("shape") or not all(
                d.HasField("dim_value") for d in tensor.shape.dim
            ):
                raise ModelError(
                    f"{path_str}: tensor {name!r} (output of {node.op_type} node {node.name!r}) "
                    "has no static shape after shape inference",
                    hint="give every input a fixed `shape` in edgepack.toml",
                )
    return inferred


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
    try:
        data = model.path.read_bytes()
    except OSError as exc:
        raise ModelError(f"{path_str}: cannot read model file ({exc.strerror})") from exc
    proto = _load(path_str, data)
    source_opset = _ai_onnx_opset(path_str, proto)  # first: the checker knows no custom domains
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as exc:
        raise ModelError(f"{path_str}: ONNX checker failed: {exc}") from exc
    proto = _convert(path_str, proto, source_opset)
    _name_nodes(proto)
    _fix_input_shapes(path_str, proto, model)
    proto = _infer_shapes(path_str, proto)
    outputs = {o.name for o in proto.graph.output}
    if model.postprocess is not None and model.postprocess.output not in outputs:
        raise ModelError(f"{path_str}: postprocess output {model.postprocess.output!r} is not "
                         f"an output of model {model.name!r}; its outputs are: "
                         f"{', '.join(sorted(outputs))}")
    optimised, report = optimize(proto)
    diffs = check_equivalent(proto, optimised, seed=check_seed)
    _check_ops(path_str, optimised)
    layouts = {i.name: ("NCHW" if i.preprocess.layout == "nchw" else "NHWC")
               for i in model.inputs if i.preprocess is not None}
    return IngestedModel(
        spec=model,
        onnx=optimised,
        source_opset=source_opset,
        opset=CANONICAL_OPSET,
        inputs=_describe(path_str, _graph_inputs(optimised), layouts),
        outputs=_describe(path_str, list(optimised.graph.output), {}),
        ops=tuple((n.op_type, n.name) for n in optimised.graph.node),
        sha256=hashlib.sha256(data).hexdigest(),
        optimize_report=report,
        max_abs_diff=diffs,
    )

# SPDX-License-Identifier: Apache-2.0
"""From a project folder to a signed, encrypted ``.epk``: the packer's whole job.

spec -> keys -> stage plan (ingest, optimise, pre/post graphs) -> placement check -> lowering
-> host reference outputs for golden inputs (kept small: golden.py) -> manifest -> sealed
sections -> signed file.
Every input is read and checked before anything is written; the artifact appears atomically.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgepack import __version__
from edgepack.artifact import container as artifact
from edgepack.artifact import golden as reference_data
from edgepack.artifact import keys, manifest
from edgepack.lower.lowering import lower
from edgepack.model.quantize import check_int8_placement
from edgepack.model.reference import golden_inputs, run_pipeline
from edgepack.model.stages import StagePlan, build_stage_plan
from edgepack.spec.boards import check_placement, load_board
from edgepack.spec.loader import load_spec
from edgepack.spec.project import Spec
from edgepack.ui import Progress

GOLDEN_SEED = 0

# Backends that compile a stage from its ONNX graph with a vendor converter (nnie_mapper for
# the NNIE, the VP6 DSP's network compiler, TensorRT's builder): a stage placed on one of their
# processors also carries its ONNX graph (section ``onnx/<stage>``). Every other stage is
# stored once, as its device graph.
ONNX_BACKENDS = frozenset({"nnie", "vp6", "tensorrt"})


@dataclass(frozen=True)
class PackResult:
    path: Path
    header: artifact.Header
    manifest: dict[str, Any]
    graph_sizes: dict[str, int]
    recipients: tuple[str, ...]

    def summary(self) -> dict[str, Any]:
        counts = {s["name"]: len(s.get("ops", [])) for s in self.manifest["stages"]}
        return {
            "artifact": str(self.path),
            "size": self.header.file_len,
            "package": self.header.package_name,
            "version": self.header.package_version,
            "version_counter": self.header.version_counter,
            "board": self.manifest["provenance"]["board"],
            "recipients": list(self.recipients),
            "stages": [
                {
                    "name": s["name"],
                    "kind": s["kind"],
                    "processor": s["processor"],
                    "graph_bytes": self.graph_sizes[s["name"]],
                    "ops": counts[s["name"]],
                }
                for s in self.manifest["stages"]
            ],
            # [models.quantize]: agreement of each quantised model with float32
            "quantized": [
                {"model": m["name"], "dtype": m["quantization"]["dtype"],
                 "agreement": m["quantization"]["agreement"]}
                for m in self.manifest["models"] if m.get("quantization")
            ],
        }


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _provenance_inputs(spec: Spec, plan: StagePlan) -> dict[str, str]:
    def rel(p: Path) -> str:
        try:
            return p.resolve().relative_to(spec.root.resolve()).as_posix()
        except ValueError:
            return p.as_posix()

    inputs = {rel(spec.path): _sha256(spec.path.read_bytes())}
    for m in plan.models:
        inputs[rel(m.spec.path)] = m.sha256
        for data_file, digest in m.data_files.items():  # external weights beside the model
            inputs[rel(m.spec.path.parent / data_file)] = digest
    return dict(sorted(inputs.items()))


def build_sections(
    spec: Spec, plan: StagePlan, board: str | None,
    backends: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], list[tuple[str, bytes]], dict[str, int]]:
    """The manifest and every section after it, deterministically ordered. ``backends``
    maps processor ids to their backend (from the board file); stages on an
    ``ONNX_BACKENDS`` processor keep their ONNX graph."""
    blobs: list[tuple[str, bytes]] = []
    graph_sizes: dict[str, int] = {}
    with_onnx = {s.name for s in plan.stages
                 if (backends or {}).get(s.processor, "cpu") in ONNX_BACKENDS}
    with Progress("lower stage graphs", total=len(plan.stages)) as progress:
        for stage in plan.stages:
            graph = lower(stage.onnx, {t.name: t.shape[0] for t in stage.inputs if t.dynamic_dim0})
            graph_sizes[stage.name] = len(graph)
            if stage.name in with_onnx:
                blobs.append((f"onnx/{stage.name}",
                              stage.onnx.SerializeToString(deterministic=True)))
            blobs.append((f"graph/{stage.name}", graph))
            progress.advance()

    with Progress("host reference on golden inputs"):
        inputs = golden_inputs(plan, GOLDEN_SEED)
        outputs = run_pipeline(plan, inputs)
    # Kept small (golden.py): float inputs as exact int8 codes, large outputs summarised.
    golden: dict[str, Any] = {"inputs": {}, "outputs": {}}
    for kind, tensors, encode in (("inputs", inputs, reference_data.input_sections),
                                  ("outputs", outputs, reference_data.output_sections)):
        for name in sorted(tensors):
            golden[kind][name], sections = encode(name, tensors[name])
            blobs += sections

    stages = []
    for stage in plan.stages:
        entry = stage.to_manifest()
        if stage.name in with_onnx:
            entry["onnx"] = f"onnx/{stage.name}"
        entry["ops"] = [n.op_type for n in stage.onnx.graph.node]
        if (backends or {}).get(stage.processor, "cpu") != "cpu":
            # the plugin the runtime tries first for this stage (the board's processor backend)
            entry["backend"] = (backends or {})[stage.processor]
        stages.append(entry)
    doc: dict[str, Any] = {
        "schema": manifest.SCHEMA_ID,
        "package": {
            "name": spec.package.name,
            "version": spec.package.version,
            "version_counter": spec.package.version_counter,
        },
        "provenance": {
            "tool": "edgepack",
            "tool_version": __version__,
            "sdk_abi": manifest.SDK_ABI,
            "board": board,
            "inputs": _provenance_inputs(spec, plan),
        },
        "models": plan.manifest_models(),
        "stages": stages,
        "pipeline": plan.pipeline(),
        "golden": golden,
    }
    manifest.validate(doc)
    return doc, blobs, graph_sizes


def pack_project(project: Path, out: Path, *, board: str | None = None,
                 stable_sections: bool = True) -> PackResult:
    """Packs the project at ``project`` (a folder or its edgepack.toml) into ``out``. With
    ``stable_sections`` (the default) a section unchanged since another release of the package
    keeps its ciphertext bytes (docs/artifact-format.md, "Stable section keys")."""
    spec = load_spec(Path(project))
    publisher = keys.load_publisher_private(spec.keys.publisher)
    recipients = [keys.load_device_public(p) for p in spec.keys.recipients]
    placement: dict[str, str] = {}
    if board is not None:
        board_spec = load_board(board, project_dir=spec.root)
        placement = spec.placement.get(board_spec.id, {})
    with Progress(f"ingest and optimise {len(spec.models)} models"):
        plan = build_stage_plan(spec, placement)
    if board is not None:
        check_placement(spec, board_spec, {m.name: list(m.ops) for m in plan.models})
        check_int8_placement(spec, board_spec)
    backends = ({p.id: p.backend for p in board_spec.processors} if board is not None
                else None)
    doc, blobs, graph_sizes = build_sections(spec, plan, board, backends)
    with Progress("seal and sign"):
        header = artifact.write_artifact(
            Path(out),
            package_name=spec.package.name,
            package_version=spec.package.version,
            version_counter=spec.package.version_counter,
            publisher=publisher,
            recipients=recipients,
            sections=[(artifact.MANIFEST_SECTION, manifest.dumps(doc)), *blobs],
            stable_sections=stable_sections,
        )
    return PackResult(
        path=Path(out),
        header=header,
        manifest=doc,
        graph_sizes=graph_sizes,
        recipients=tuple(keys.fingerprint(r) for r in recipients),
    )

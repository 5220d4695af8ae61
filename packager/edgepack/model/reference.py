# SPDX-License-Identifier: Apache-2.0
"""The host reference: onnxruntime (one thread, sequential) on the stage graphs, run in
pipeline order with the semantics of docs/manifest.md (bindings, ``map`` over dynamic rows).

The artifact's golden outputs and the bench client's accuracy check both come from here. A
pipeline is given either as a ``StagePlan`` or as a manifest-like mapping (``pipeline`` and
``stages`` keys, as in the manifest) plus the stage graphs by stage name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import onnx

from edgepack.artifact.golden import on_input_grid
from edgepack.model.frame_size import SIZE_SUFFIX, place_frame
from edgepack.model.stages import Stage, StagePlan

Graph = onnx.ModelProto | bytes


class _Sessions:
    """One onnxruntime session per stage graph, created on first use."""

    def __init__(self, graphs: Mapping[str, Graph]) -> None:
        self.graphs = graphs
        self.sessions: dict[str, Any] = {}

    def run(self, stage: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if stage not in self.sessions:
            self.sessions[stage] = _session(self.graphs[stage])
        session = self.sessions[stage]
        names = [o.name for o in session.get_outputs()]
        results = session.run(names, feeds)
        return {n: np.asarray(r) for n, r in zip(names, results, strict=True)}


def _session(graph: Graph) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    data = graph.SerializeToString() if isinstance(graph, onnx.ModelProto) else graph
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def run_stage(stage: Stage | Graph, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run one stage graph on ``inputs`` (by input name); returns outputs by name."""
    graph = stage.onnx if isinstance(stage, Stage) else stage
    return _Sessions({"stage": graph}).run("stage", dict(inputs))


def _describe(plan: StagePlan | Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(pipeline dict, stage entries by name) from a plan or a manifest-like mapping."""
    if isinstance(plan, StagePlan):
        return plan.pipeline(), {s["name"]: s for s in plan.manifest_stages()}
    return dict(plan["pipeline"]), {s["name"]: s for s in plan["stages"]}


def run_pipeline(
    plan: StagePlan | Mapping[str, Any],
    stage_graphs: Mapping[str, Graph] | Mapping[str, np.ndarray],
    inputs: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Run the pipeline; returns its outputs by public name.

    Call as ``run_pipeline(plan, inputs)`` for a ``StagePlan`` or as
    ``run_pipeline(manifest_like, stage_graphs, inputs)``.
    """
    if inputs is None:
        if not isinstance(plan, StagePlan):
            raise TypeError("run_pipeline(manifest, stage_graphs, inputs) needs stage graphs")
        graphs: Mapping[str, Graph] = {s.name: s.onnx for s in plan.stages}
        inputs = stage_graphs  # type: ignore[assignment]
        assert inputs is not None
    else:
        graphs = stage_graphs  # type: ignore[assignment]
    pipeline, stages = _describe(plan)
    sessions = _Sessions(graphs)

    tensors: dict[str, np.ndarray] = {}
    dynamic: set[str] = set()
    for desc in pipeline["inputs"]:
        if desc["name"] not in inputs:
            raise KeyError(f"pipeline input {desc['name']!r} not given")
        tensors[desc["name"]] = np.asarray(inputs[desc["name"]])
        if "size_max" in desc:  # a frame of the app's size: placed in the largest buffer
            frame = tensors[desc["name"]]
            check_frame_size(desc, frame.shape)
            tensors[desc["name"]] = place_frame(frame, tuple(desc["size_max"]))
            tensors[desc["name"] + SIZE_SUFFIX] = np.array(frame.shape[:2], np.int64)
    for step in pipeline["steps"]:
        stage = stages[step["stage"]]
        feeds = {name: tensors[ref] for name, ref in step["bind"].items()}
        if step.get("map"):
            outs = _run_mapped(sessions, stage, feeds,
                               {n for n, ref in step["bind"].items() if ref in dynamic})
            dynamic.update(f"{stage['name']}:{o}" for o in outs)
        else:
            outs = sessions.run(stage["name"], feeds)
            dynamic.update(f"{stage['name']}:{o['name']}" for o in stage["outputs"]
                           if o.get("dynamic_dim0"))
        for name, value in outs.items():
            tensors[f"{stage['name']}:{name}"] = value
    return {public: tensors[ref] for public, ref in pipeline["outputs"].items()}


def check_frame_size(desc: Mapping[str, Any], shape: tuple[int, ...]) -> None:
    """A frame for a pipeline input with ``size_min`` / ``size_max``: its other dimensions as
    declared, height and width within the bounds (ValueError naming them otherwise)."""
    low, high = desc["size_min"], desc["size_max"]
    if (len(shape) != len(desc["shape"]) or tuple(shape[2:]) != tuple(desc["shape"][2:])
            or not all(lo <= d <= hi for d, lo, hi in zip(shape[:2], low, high, strict=True))):
        raise ValueError(f"input {desc['name']!r}: shape {list(shape)} is outside the bounds "
                         f"[{low[0]}..{high[0]}, {low[1]}..{high[1]}, "
                         f"{', '.join(map(str, desc['shape'][2:]))}]")


def _run_mapped(sessions: _Sessions, stage: Mapping[str, Any], feeds: dict[str, np.ndarray],
                rows_from: set[str]) -> dict[str, np.ndarray]:
    """Run ``stage`` once per row of the dynamic inputs (each row a batch of 1) and
    concatenate the outputs along dimension 0."""
    if not rows_from:
        raise ValueError(f"map step {stage['name']!r} has no input with a dynamic dimension 0")
    counts = {feeds[n].shape[0] for n in rows_from}
    if len(counts) != 1:
        raise ValueError(f"map step {stage['name']!r}: dynamic inputs differ in row count")
    count = counts.pop()
    per_row: dict[str, list[np.ndarray]] = {o["name"]: [] for o in stage["outputs"]}
    for row in range(count):
        row_feeds = {n: (v[row:row + 1] if n in rows_from else v) for n, v in feeds.items()}
        for name, value in sessions.run(stage["name"], row_feeds).items():
            per_row[name].append(value)
    result: dict[str, np.ndarray] = {}
    for o in stage["outputs"]:
        if per_row[o["name"]]:
            result[o["name"]] = np.concatenate(per_row[o["name"]], axis=0)
        else:
            result[o["name"]] = np.zeros((0, *o["shape"][1:]), dtype=np.dtype(o["dtype"]))
    return result


def golden_inputs(plan: StagePlan | Mapping[str, Any], seed: int) -> dict[str, np.ndarray]:
    """Seeded random pipeline inputs: uint8 images over the full range, standard-normal
    floats on the grid int8 x 1/32 (which the artifact stores exactly in a quarter of the
    bytes, artifact/golden.py), small non-negative integers."""
    pipeline, _ = _describe(plan)
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for desc in pipeline["inputs"]:
        shape, dtype = tuple(desc["shape"]), np.dtype(desc["dtype"])
        if dtype == np.float32:
            out[desc["name"]] = on_input_grid(rng.standard_normal(shape))
        elif dtype == np.uint8:
            out[desc["name"]] = rng.integers(0, 256, shape, dtype=np.uint8)
        else:
            out[desc["name"]] = rng.integers(0, 16, shape).astype(dtype)
    return out

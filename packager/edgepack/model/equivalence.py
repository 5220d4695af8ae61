# SPDX-License-Identifier: Apache-2.0
"""The pack-time numeric check: the converted, optimised graph against the user's original
under onnxruntime, on seeded inputs that are valid for each input.

Valid means what the graph does with the input: integer ids that index a table (Gather,
GatherElements) stay below the table's length, inputs of Sqrt/Log/Reciprocal are positive,
bool inputs are booleans. Outputs compare equal where both are NaN at the same positions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import helper

from edgepack.model.diagnostics import one_line
from edgepack.model.optimize import static_shapes

# Ops that hand their first input's values through unchanged (maybe reshaped or reordered):
# an input's valid range is decided by what lies behind them.
_VALUE_PRESERVING = {"Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose",
                     "Cast", "Expand", "Tile", "Slice", "Concat", "Split", "Gather"}
# Ops whose first input must be positive (NaN or -inf otherwise).
_NEEDS_POSITIVE = {"Sqrt", "Log", "Reciprocal", "Pow"}


class EquivalenceError(AssertionError):
    """The optimised graph computes something else: a bug in a pass, never a user mistake."""


class OnnxruntimeFailed(Exception):
    """onnxruntime refused to load or run one side of the check (``which``)."""

    def __init__(self, which: str, exc: Exception) -> None:
        super().__init__(one_line(exc))
        self.which = which


def _consumers(graph: onnx.GraphProto) -> dict[str, list[tuple[onnx.NodeProto, int]]]:
    users: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
    for node in graph.node:
        for slot, name in enumerate(node.input):
            if name:
                users.setdefault(name, []).append((node, slot))
    return users


def _attr(node: onnx.NodeProto, name: str, default: int) -> int:
    for a in node.attribute:
        if a.name == name:
            return int(helper.get_attribute_value(a))
    return default


def _index_bound(node: onnx.NodeProto, slot: int,
                 shapes: dict[str, tuple[int, ...]]) -> int | None:
    """The exclusive upper bound for values reaching ``node`` at ``slot`` as indices."""
    if node.op_type in ("Gather", "GatherElements") and slot == 1:
        data = shapes.get(node.input[0])
        if data:
            return data[_attr(node, "axis", 0) % len(data)]
    return None


def input_constraints(model: onnx.ModelProto) -> dict[str, tuple[int | None, bool]]:
    """For each graph input: (upper bound for integer ids or None, needs positive values)."""
    graph = model.graph
    users = _consumers(graph)
    try:
        shapes = static_shapes(model)
    except Exception:  # feeds are still made; bounds just stay unknown
        shapes = {}
    inits = {i.name for i in graph.initializer}
    found: dict[str, tuple[int | None, bool]] = {}
    for value in graph.input:
        if value.name in inits:
            continue
        bound: int | None = None
        positive = False
        seen: set[str] = set()
        frontier = [value.name]
        while frontier:
            name = frontier.pop()
            if name in seen:
                continue
            seen.add(name)
            for node, slot in users.get(name, []):
                limit = _index_bound(node, slot, shapes)
                if limit is not None:
                    bound = limit if bound is None else min(bound, limit)
                elif node.op_type in _NEEDS_POSITIVE and slot == 0:
                    positive = True
                elif node.op_type in _VALUE_PRESERVING and (
                    slot == 0 or node.op_type == "Concat"
                ):
                    frontier.extend(o for o in node.output if o)
        found[value.name] = (bound, positive)
    return found


def random_feeds(model: onnx.ModelProto, seed: int) -> dict[str, np.ndarray]:
    """Seeded inputs of the right dtype and (static) shape for every graph input, each in the
    range the graph accepts (ids within their table, positive where a Sqrt/Log needs it)."""
    rng = np.random.default_rng(seed)
    constraints = input_constraints(model)
    feeds: dict[str, np.ndarray] = {}
    for value in model.graph.input:
        if value.name not in constraints:
            continue
        bound, positive = constraints[value.name]
        t = value.type.tensor_type
        dtype = helper.tensor_dtype_to_np_dtype(t.elem_type)
        shape = tuple(max(int(d.dim_value), 1) for d in t.shape.dim)
        if dtype == np.bool_:
            feeds[value.name] = rng.random(shape) < 0.5
        elif np.issubdtype(dtype, np.floating):
            x = rng.standard_normal(shape)
            feeds[value.name] = (np.abs(x) + 0.05 if positive else x).astype(dtype)
        elif bound is not None:
            feeds[value.name] = rng.integers(0, max(bound, 1), shape).astype(dtype)
        else:
            high = min(int(np.iinfo(dtype).max), 255)  # non-negative: ids and counts
            feeds[value.name] = rng.integers(0, high + 1, shape).astype(dtype)
    return feeds


def run_onnxruntime(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 4  # fatal only: a refusal is reported once, by the caller
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    results: list[Any] = session.run(None, feeds)
    return [np.asarray(r) for r in results]


def compare(name: str, a: np.ndarray, b: np.ndarray, rtol: float, atol: float) -> float:
    """Max abs difference of ``b`` from ``a``; raises ``EquivalenceError`` beyond tolerance.
    NaNs must sit at the same positions; there they count as equal."""
    if a.shape != b.shape:
        raise EquivalenceError(f"output {name!r}: shape {a.shape} became {b.shape}")
    if not a.size:
        return 0.0
    if a.dtype.kind not in "fc":
        if not np.array_equal(a, b):
            mismatched = int(np.count_nonzero(a != b))
            raise EquivalenceError(f"optimised graph differs on output {name!r}: "
                                   f"{mismatched} of {a.size} values differ")
        return 0.0
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    nan_a, nan_b = np.isnan(a64), np.isnan(b64)
    if not np.array_equal(nan_a, nan_b):
        raise EquivalenceError(f"optimised graph differs on output {name!r}: NaN at "
                               f"{int(np.count_nonzero(nan_a != nan_b))} different positions")
    finite = np.isfinite(a64) & np.isfinite(b64)
    if not np.array_equal(a64[~finite & ~nan_a], b64[~finite & ~nan_a]):
        raise EquivalenceError(f"optimised graph differs on output {name!r}: infinities differ")
    diff = float(np.max(np.abs(a64[finite] - b64[finite]))) if finite.any() else 0.0
    if not np.allclose(a64[finite], b64[finite], rtol=rtol, atol=atol):
        raise EquivalenceError(f"optimised graph differs on output {name!r}: max abs diff "
                               f"{diff:.3g} (rtol {rtol}, atol {atol})")
    return diff


def check_equivalent(before: onnx.ModelProto, after: onnx.ModelProto, seed: int = 0,
                     rtol: float = 1e-4, atol: float = 1e-4) -> dict[str, float]:
    """Run both models under onnxruntime on the same seeded inputs; returns max-abs diff per
    output and raises ``EquivalenceError`` when any output differs beyond the tolerances."""
    feeds = random_feeds(before, seed)
    names = [o.name for o in before.graph.output]
    if names != [o.name for o in after.graph.output]:
        raise EquivalenceError(f"outputs differ: {names} vs {[o.name for o in after.graph.output]}")
    results = []
    for which, model in (("original", before), ("optimised", after)):
        try:
            results.append(run_onnxruntime(model, feeds))
        except Exception as exc:  # onnxruntime's own exception types (Fail, InvalidGraph, ...)
            raise OnnxruntimeFailed(which, exc) from exc
    diffs: dict[str, float] = {}
    for name, a, b in zip(names, results[0], results[1], strict=True):
        diffs[name] = compare(name, a, b, rtol, atol)
    return diffs


# SPDX-License-Identifier: Apache-2.0
"""Broken models as users bring them: seeded mutations of exporter-like graphs (opset, constant
values, attributes, op types, input shapes). Each either ingests or fails with one ModelError
line naming the model file; none ends in another exception."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from exported_graphs import (
    channel_shuffle,
    function_ops,
    opset18_signatures,
    vit_attention_reshape,
    yolov8_head,
)
from onnx import numpy_helper

from edgepack.errors import ModelError
from edgepack.model.ingest import ingest_model
from edgepack.spec.project import InputSpec, ModelSpec

BASES: list[tuple[Callable[[], onnx.ModelProto], dict[str, tuple[int, ...]]]] = [
    (yolov8_head, {"x": (1, 16, 8, 8)}), (vit_attention_reshape, {"x": (1, 5, 8)}),
    (channel_shuffle, {"x": (1, 8, 4, 4)}), (lambda: opset18_signatures(20), {"x": (1, 5, 6, 6)}),
    (lambda: function_ops(21), {"x": (1, 4, 3, 3)}),
]
OPS = ["Gelu", "Mish", "ReduceMean", "Split", "Pad", "Resize", "NonZero", "Relu", "Reshape"]


def mutate(rng: random.Random, model: onnx.ModelProto,
           shapes: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    kind = rng.randrange(5)
    if kind == 0:
        model.opset_import[0].version = rng.randrange(11, 24)
    elif kind == 1:
        init = rng.choice(model.graph.initializer)
        values = numpy_helper.to_array(init).copy()
        if values.size:
            flat = values.reshape(-1)
            flat[rng.randrange(flat.size)] = (rng.choice([-1, 0, 3, 1 << 20])
                                              if values.dtype.kind == "i" else
                                              rng.choice([0.0, -1.0, 1e9]))
            init.CopyFrom(numpy_helper.from_array(values, init.name))
    elif kind == 2:
        attrs = [a for n in model.graph.node for a in n.attribute
                 if a.type in (onnx.AttributeProto.INT, onnx.AttributeProto.INTS)]
        attr = rng.choice(attrs)
        if attr.type == onnx.AttributeProto.INT:
            attr.i = rng.choice([-3, 0, 2, 5])
        elif len(attr.ints):
            attr.ints[rng.randrange(len(attr.ints))] = rng.choice([-1, 0, 2, 9])
    elif kind == 3:
        rng.choice(model.graph.node).op_type = rng.choice(OPS)
    else:
        return {k: tuple(max(1, d + rng.choice([-1, 1, 4])) for d in v) for k, v in shapes.items()}
    return shapes


@pytest.mark.parametrize("seed", range(4))
def test_mutated_models_ingest_or_fail_with_one_line(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    outcomes = {"ingested": 0, "refused": 0}
    for case in range(30):
        build, shapes = BASES[case % len(BASES)]
        model = build()
        shapes = mutate(rng, model, shapes)
        path = tmp_path / f"case{case}.onnx"
        path.write_bytes(model.SerializeToString())
        spec = ModelSpec("m", path, tuple(InputSpec(k, v) for k, v in shapes.items()))
        try:
            got = ingest_model(spec)
        except ModelError as exc:
            message = str(exc).split("\n  hint: ")[0]
            assert message.startswith(f"{path}: ") and "\n" not in message, message
            outcomes["refused"] += 1
        else:
            assert all(np.isfinite(d) for d in got.max_abs_diff.values())
            outcomes["ingested"] += 1
    assert outcomes["refused"] and outcomes["ingested"], outcomes

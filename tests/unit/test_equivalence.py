# SPDX-License-Identifier: Apache-2.0
"""The pack-time equivalence check feeds each input values valid for it and compares NaNs by
position; an embedding model (Gather on token ids) and a sqrt model ingest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgepack.errors import ModelError
from edgepack.model.equivalence import (
    EquivalenceError,
    check_equivalent,
    compare,
    input_constraints,
    random_feeds,
)
from edgepack.model.ingest import ingest_model
from edgepack.spec.project import InputSpec, ModelSpec


def build(nodes: list[onnx.NodeProto], inputs: list[onnx.ValueInfoProto],
          outputs: list[onnx.ValueInfoProto], inits: list[onnx.TensorProto]) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def embedding(rows: int = 50, id_type: int = TensorProto.INT64) -> onnx.ModelProto:
    """Token ids -> (Cast) -> Gather on a [rows, 8] table, and the same ids through Unsqueeze
    into a smaller position table: ids must stay below both tables' lengths."""
    table = numpy_helper.from_array(
        np.random.default_rng(0).normal(0, 1, (rows, 8)).astype(np.float32), "table")
    small = numpy_helper.from_array(np.ones((rows // 2, 8), np.float32), "small")
    axes = numpy_helper.from_array(np.array([0], np.int64), "axes")
    nodes = [
        helper.make_node("Cast", ["ids"], ["ids64"], to=TensorProto.INT64),
        helper.make_node("Gather", ["table", "ids64"], ["emb"], axis=0),
        helper.make_node("Unsqueeze", ["ids64", "axes"], ["ids2"]),
        helper.make_node("Gather", ["small", "ids2"], ["pos"], axis=0),
        helper.make_node("Squeeze", ["pos", "axes"], ["pos2"]),
        helper.make_node("Add", ["emb", "pos2"], ["y"]),
    ]
    ids = helper.make_tensor_value_info("ids", id_type, [1, 6])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6, 8])
    return build(nodes, [ids], [y], [table, small, axes])


def test_ids_feeding_gather_stay_inside_the_smallest_table() -> None:
    model = embedding(rows=50)
    assert input_constraints(model) == {"ids": (25, False)}
    for seed in range(20):
        ids = random_feeds(model, seed)["ids"]
        assert ids.dtype == np.int64 and ids.min() >= 0 and ids.max() < 25


@pytest.mark.parametrize("id_type", [TensorProto.INT64, TensorProto.INT32])
def test_embedding_model_ingests(tmp_path: Path, id_type: int) -> None:
    path = tmp_path / "emb.onnx"
    path.write_bytes(embedding(rows=300, id_type=id_type).SerializeToString())
    got = ingest_model(ModelSpec("emb", path, (InputSpec("ids", (1, 6)),)))
    assert got.max_abs_diff["y"] == 0.0


def test_sqrt_and_log_inputs_get_positive_values(tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 64])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 64])
    model = build([helper.make_node("Reshape", ["x", "shape"], ["r"]),
                   helper.make_node("Sqrt", ["r"], ["s"]),
                   helper.make_node("Reshape", ["s", "shape"], ["y"])],
                  [x], [y], [numpy_helper.from_array(np.array([2, 64], np.int64), "shape")])
    feeds = random_feeds(model, 0)
    assert feeds["x"].min() > 0
    path = tmp_path / "sqrt.onnx"
    path.write_bytes(model.SerializeToString())
    got = ingest_model(ModelSpec("sqrt", path, (InputSpec("x", (2, 64)),)))
    assert got.max_abs_diff["y"] == 0.0


def test_bool_inputs_get_booleans() -> None:
    cond = helper.make_tensor_value_info("cond", TensorProto.BOOL, [4, 16])
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 16])
    zero = numpy_helper.from_array(np.zeros(1, np.float32), "zero")
    model = build([helper.make_node("Where", ["cond", "x", "zero"], ["y"])], [cond, x], [y],
                  [zero])
    feeds = random_feeds(model, 3)
    assert feeds["cond"].dtype == np.bool_ and 0 < feeds["cond"].sum() < 64
    assert check_equivalent(model, model, seed=3) == {"y": 0.0}


def test_nan_positions_compare_equal_only_when_they_match() -> None:
    a = np.array([1.0, np.nan, 3.0, np.inf], np.float32)
    assert compare("out", a, a.copy(), 1e-4, 1e-4) == 0.0
    with pytest.raises(EquivalenceError, match="NaN at 1 different positions"):
        compare("out", a, np.array([1.0, 2.0, 3.0, np.inf], np.float32), 1e-4, 1e-4)
    with pytest.raises(EquivalenceError, match="infinities differ"):
        compare("out", a, np.array([1.0, np.nan, 3.0, -np.inf], np.float32), 1e-4, 1e-4)
    with pytest.raises(EquivalenceError, match=r"max abs diff 0\.5"):
        compare("out", a, np.array([1.5, np.nan, 3.0, np.inf], np.float32), 1e-4, 1e-4)
    with pytest.raises(EquivalenceError, match="1 of 3 values differ"):
        compare("ids", np.array([1, 2, 3]), np.array([1, 2, 4]), 1e-4, 1e-4)


def test_nan_producing_model_checks_against_itself() -> None:
    """Log of values that may be negative: NaN at the same places on both sides is equal."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 8])
    model = build([helper.make_node("Sub", ["x", "one"], ["d"]),
                   helper.make_node("Log", ["d"], ["y"])], [x], [y],
                  [numpy_helper.from_array(np.array(1.0, np.float32), "one")])
    assert check_equivalent(model, model, seed=0) == {"y": 0.0}


def test_model_onnxruntime_cannot_run_is_one_model_error(tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1])
    index = numpy_helper.from_array(np.array([7], np.int64), "index")
    model = build([helper.make_node("Gather", ["x", "index"], ["y"], axis=1, name="/pick")],
                  [x], [y], [index])
    path = tmp_path / "oob.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(ModelError) as info:
        ingest_model(ModelSpec("oob", path, (InputSpec("x", (1, 4)),)))
    message = str(info.value)
    assert message.startswith(f"{path}: onnxruntime cannot run the model: ") and "\n" not in message
    assert "out of" in message or "indices" in message

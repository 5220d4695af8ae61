# SPDX-License-Identifier: Apache-2.0
"""Each optimiser pass does its job, and the optimised graph matches onnxruntime's original."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgepack.model import zoo
from edgepack.model.equivalence import (
    EquivalenceError,
    check_equivalent,
    random_feeds,
    run_onnxruntime,
)
from edgepack.model.optimize import (
    fold_batchnorm,
    fold_constants,
    optimize,
    remove_dead,
    remove_identity,
)


def ops(model: onnx.ModelProto) -> Counter[str]:
    return Counter(n.op_type for n in model.graph.node)


def small_model(nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto],
                out_shape: list[int]) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_batchnorm_folded_into_conv() -> None:
    model = zoo.mobilenet_classifier(seed=1)
    assert ops(model)["BatchNormalization"] == 9
    optimised, report = optimize(model)
    assert ops(optimised)["BatchNormalization"] == 0
    assert report["fold_batchnorm"] == 9
    assert ops(optimised)["Conv"] == ops(model)["Conv"]
    diffs = check_equivalent(model, optimised, seed=5)
    assert diffs["logits"] < 1e-4


def test_detector_identity_dropout_and_shape_chain_removed() -> None:
    model = zoo.yolo_detector(seed=2)
    before = ops(model)
    assert before["Identity"] and before["Dropout"] and before["Shape"]
    optimised, report = optimize(model)
    after = ops(optimised)
    for op in ("Identity", "Dropout", "Shape", "Gather", "Unsqueeze", "BatchNormalization"):
        assert after[op] == 0, op
    assert after["Reshape"] == before["Reshape"]  # the Reshapes stay, their shapes constant
    assert report["remove_identity"] == before["Identity"] + before["Dropout"]
    assert report["fold_shapes"] == before["Shape"]
    assert report["fold_constants"] >= 3 * before["Shape"]  # Gather, Unsqueeze, Concat each
    assert len(optimised.graph.node) < len(model.graph.node)
    check_equivalent(model, optimised, seed=0, rtol=1e-4, atol=1e-3)
    # every tensor keeps a static shape
    for vi in optimised.graph.value_info:
        assert all(d.HasField("dim_value") for d in vi.type.tensor_type.shape.dim), vi.name


def test_constant_folding_evaluates_constant_subgraphs() -> None:
    nodes = [
        helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(
            np.array([[1.0, 2.0, 3.0, 4.0]], np.float32))),
        helper.make_node("Add", ["c", "w"], ["cw"]),
        helper.make_node("Sqrt", ["cw"], ["s"]),
        helper.make_node("Mul", ["x", "s"], ["y"]),
    ]
    w = numpy_helper.from_array(np.array([[3.0, 2.0, 1.0, 0.0]], np.float32), "w")
    model = small_model(nodes, [w], [1, 4])
    optimised, report = optimize(model)
    assert ops(optimised) == Counter({"Mul": 1})
    assert report["fold_constants"] == 3
    assert [i.name for i in optimised.graph.initializer] == ["s"]
    x = np.ones((1, 4), np.float32)
    np.testing.assert_allclose(run_onnxruntime(optimised, {"x": x})[0], [[2.0, 2.0, 2.0, 2.0]])


def test_identity_on_graph_output_keeps_the_output_name() -> None:
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Identity", ["r"], ["y"])]
    model = small_model(nodes, [], [1, 4])
    assert remove_identity(model) == 1
    assert [(n.op_type, list(n.output)) for n in model.graph.node] == [("Relu", ["y"])]


def test_batchnorm_not_folded_when_conv_output_is_shared() -> None:
    g = zoo.LayerBuilder(0)
    conv = g.conv("input", 3, 4, 3)
    bn = g.bn(conv, 4)
    g.op1("Add", [bn, conv], out="y")
    graph = helper.make_graph(g.nodes, "t", [zoo._image_input("input", 8)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT,
                                                             [1, 4, 8, 8])], g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    assert fold_batchnorm(model) == 0
    assert ops(model)["BatchNormalization"] == 1


def test_remove_dead_drops_unused_nodes_and_initializers() -> None:
    nodes = [helper.make_node("Relu", ["x"], ["y"]),
             helper.make_node("Mul", ["x", "unused_w"], ["dangling"])]
    inits = [numpy_helper.from_array(np.ones((1, 4), np.float32), "unused_w"),
             numpy_helper.from_array(np.ones(3, np.float32), "orphan")]
    model = small_model(nodes, inits, [1, 4])
    assert remove_dead(model) == 3
    assert ops(model) == Counter({"Relu": 1}) and not model.graph.initializer


def test_fold_constants_leaves_input_dependent_nodes() -> None:
    model = zoo.resnet18(seed=0, input_size=64, num_classes=10)
    assert fold_constants(model) == 0


def test_check_equivalent_catches_a_wrong_graph() -> None:
    model = zoo.mobilenet_classifier(seed=1)
    broken, _ = optimize(model)
    w = next(i for i in broken.graph.initializer if i.name.startswith("fc_w"))
    arr = numpy_helper.to_array(w).copy()
    arr[0, 0] += 1.0
    w.CopyFrom(numpy_helper.from_array(arr, w.name))
    with pytest.raises(EquivalenceError, match="max abs diff"):
        check_equivalent(model, broken, seed=0)


def test_random_feeds_are_seeded() -> None:
    model = zoo.mobilenet_classifier()
    a, b = random_feeds(model, 1)["input"], random_feeds(model, 1)["input"]
    assert a.shape == (1, 3, 96, 96) and np.array_equal(a, b)
    assert not np.array_equal(a, random_feeds(model, 2)["input"])

# SPDX-License-Identifier: Apache-2.0
"""3-D ConvTranspose becomes one 2-D ConvTranspose per kernel depth tap at ingest
(model/conv_transpose3d.py): strides, dilations, pads, output_padding, groups and bias as
onnxruntime computes them; a computed weight or output_shape stays as it is."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgepack.model.equivalence import run_onnxruntime
from edgepack.model.optimize import optimize

CASES: list[dict[str, Any]] = [
    {},
    {"strides": [2, 1, 2]},
    {"strides": [2, 2, 1], "pads": [1, 0, 1, 0, 1, 1], "output_padding": [1, 0, 0]},
    {"dilations": [2, 1, 1], "group": 2},
    {"strides": [3, 1, 1], "dilations": [2, 2, 1], "pads": [2, 1, 0, 1, 0, 0]},
]


def _model(attrs: dict[str, Any], const_weight: bool = True) -> onnx.ModelProto:
    group = attrs.get("group", 1)
    rng = np.random.default_rng(len(attrs))
    weight = numpy_helper.from_array(rng.normal(size=(4, 3, 3, 2, 3)).astype(np.float32), "w")
    bias = numpy_helper.from_array(rng.normal(size=(3 * group,)).astype(np.float32), "b")
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4, 3, 5, 4])]
    if not const_weight:
        inputs.append(helper.make_tensor_value_info("w", TensorProto.FLOAT, [4, 3, 3, 2, 3]))
    graph = helper.make_graph(
        [helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], name="/up", **attrs)], "g",
        inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[weight, bias] if const_weight else [bias])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("attrs", CASES, ids=[str(sorted(c)) for c in CASES])
def test_3d_conv_transpose_becomes_2d_ones(attrs: dict[str, Any]) -> None:
    model = _model(attrs)
    optimized, report = optimize(model)
    assert report["conv_transpose_3d"] == 1
    convs = [n for n in optimized.graph.node if n.op_type == "ConvTranspose"]
    assert len(convs) == 3 and all(len(a.ints) == 2 for n in convs for a in n.attribute
                                   if a.name == "strides")
    x = np.random.default_rng(9).normal(size=(2, 4, 3, 5, 4)).astype(np.float32)
    (want,) = run_onnxruntime(model, {"x": x})
    (got,) = run_onnxruntime(optimized, {"x": x})
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_computed_weight_stays_3d() -> None:
    optimized, report = optimize(_model({}, const_weight=False))
    assert report["conv_transpose_3d"] == 0
    assert [n.op_type for n in optimized.graph.node] == ["ConvTranspose"]

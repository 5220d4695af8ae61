# SPDX-License-Identifier: Apache-2.0
"""uint8 MaxPool (ops/max_pool_u8.cpp: an int8 model's pooling on its bytes) against
onnxruntime, byte for byte: kernel sizes, strides 1-3 (the stride-2 vector path with rows
shorter and longer than 16 outputs), dilations, asymmetric pads, ceil_mode, 1 and 3 threads;
each with the host's instruction sets (the AVX-512 VBMI path where present) and capped."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pytest
from graph_runner import run_device, run_ort
from onnx import TensorProto, helper
from sdk_host import SdkBuild

from edgepack.lower import device_graph as dg
from edgepack.lower.lowering import lower

CASES: list[tuple[list[int], dict[str, Any]]] = [
    ([1, 3, 112, 112], {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ([1, 5, 20, 20], {"kernel_shape": [5, 5], "pads": [2, 2, 2, 2]}),
    ([2, 2, 13, 47], {"kernel_shape": [3, 2], "strides": [2, 2], "pads": [0, 1, 1, 0]}),
    ([1, 4, 9, 9], {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1}),
    ([1, 2, 17, 70], {"kernel_shape": [3, 3], "strides": [1, 2], "dilations": [2, 2],
                      "pads": [2, 2, 2, 2]}),
    ([1, 3, 11, 31], {"kernel_shape": [3, 3], "strides": [3, 3], "pads": [1, 1, 1, 1]}),
    # rows wider than one AVX-512 VBMI chunk (63 outputs of stride 2, 124 of stride 1)
    ([1, 2, 7, 301], {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ([1, 2, 5, 260], {"kernel_shape": [2, 4], "pads": [0, 3, 1, 0]}),
]


def _model(shape: list[int], attrs: dict[str, Any]) -> onnx.ModelProto:
    node = helper.make_node("MaxPool", ["x"], ["y"], **attrs)
    graph = helper.make_graph([node], "max_pool_u8",
                              [helper.make_tensor_value_info("x", TensorProto.UINT8, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.UINT8, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return onnx.shape_inference.infer_shapes(model)


@pytest.mark.parametrize("case", range(len(CASES)))
def test_uint8_max_pool_matches_onnxruntime(sdk_host: SdkBuild, case: int, isa: str) -> None:
    shape, attrs = CASES[case]
    model = _model(shape, attrs)
    # computed on the bytes: no Cast to float32 around it
    assert [n.op_type for n in dg.parse(lower(model)).nodes] == ["MaxPool"]
    x = np.random.default_rng(case).integers(0, 256, shape, dtype=np.uint8)
    want = run_ort(model, {"x": x})["y"]
    for threads in (1, 3):
        got = run_device(sdk_host.build, model, {"x": x}, threads=threads)["y"]
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, want)

# SPDX-License-Identifier: Apache-2.0
"""model/qdq_bytes.py: Concat, Split, MaxPool and nearest Resize between QDQ nodes read the uint8
tensors directly, and onnxruntime computes the same bytes before and after the rewrite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_static,
)

from edgepack.model.qdq_bytes import fuse_byte_ops

SHAPE = [1, 4, 8, 8]


class _Reader(CalibrationDataReader):  # type: ignore[misc]
    def __init__(self) -> None:
        rng = np.random.default_rng(0)
        self.samples = iter([{"x": rng.standard_normal(SHAPE).astype(np.float32)}
                             for _ in range(4)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.samples, None)


def _qdq_model(tmp: Path) -> onnx.ModelProto:
    """x -> (Mul 3, Sigmoid) -> Concat -> MaxPool -> Resize x2 -> Split -> Add, quantised by
    onnxruntime (QDQ): the Concat's inputs have different scales, the Split's outputs their own."""
    nodes = [
        helper.make_node("Mul", ["x", "three"], ["a"], name="mul"),
        helper.make_node("Sigmoid", ["x"], ["b"], name="sigmoid"),
        helper.make_node("Concat", ["a", "b"], ["cat"], name="concat", axis=1),
        helper.make_node("MaxPool", ["cat"], ["pool"], name="pool", kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Resize", ["pool", "", "scales"], ["up"], name="resize", mode="nearest"),
        helper.make_node("Split", ["up", "halves"], ["s0", "s1"], name="split", axis=1),
        helper.make_node("Add", ["s0", "s1"], ["y"], name="add"),
    ]
    graph = helper.make_graph(
        nodes, "bytes", [helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, SHAPE)],
        initializer=[numpy_helper.from_array(np.array(3.0, np.float32), "three"),
                     numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"),
                     numpy_helper.from_array(np.array([4, 4], np.int64), "halves")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    src, dst = tmp / "float.onnx", tmp / "qdq.onnx"
    onnx.save(model, str(src))
    quantize_static(str(src), str(dst), _Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    op_types_to_quantize=["Mul", "Sigmoid", "Concat", "MaxPool", "Resize",
                                          "Split", "Add"],
                    extra_options={"CalibTensorRangeSymmetric": False})
    return onnx.load(str(dst))


def _run(model: onnx.ModelProto, x: np.ndarray) -> Any:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), opts,
                                   providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def test_selecting_ops_read_bytes_and_compute_the_same(tmp_path: Path) -> None:
    qdq = _qdq_model(tmp_path)
    fused = onnx.ModelProto()
    fused.CopyFrom(qdq)
    assert fuse_byte_ops(fused) == 4
    onnx.checker.check_model(fused, full_check=True)
    producers = {o: n for n in fused.graph.node for o in n.output}
    for node in fused.graph.node:
        if node.op_type in ("Concat", "MaxPool", "Resize", "Split"):
            src = producers[node.input[0]]
            assert src.op_type != "DequantizeLinear", node.name
    # the Concat's inputs requantised to its output's parameters (two QuantizeLinear in front)
    concat = next(n for n in fused.graph.node if n.op_type == "Concat")
    assert [producers[i].op_type for i in concat.input] == ["QuantizeLinear"] * 2
    rng = np.random.default_rng(1)
    for _ in range(3):
        x = (rng.standard_normal(SHAPE) * 2).astype(np.float32)
        np.testing.assert_array_equal(_run(fused, x), _run(qdq, x))


def test_ops_with_float_readers_stay(tmp_path: Path) -> None:
    qdq = _qdq_model(tmp_path)
    # the Concat's output also read in float: the pattern does not apply to it
    cat_out = next(n for n in qdq.graph.node if n.op_type == "Concat").output[0]
    qdq.graph.output.append(helper.make_tensor_value_info(cat_out, TensorProto.FLOAT, None))
    fused = onnx.ModelProto()
    fused.CopyFrom(qdq)
    assert fuse_byte_ops(fused) == 3
    concat = next(n for n in fused.graph.node if n.op_type == "Concat")
    assert concat.output[0] == cat_out


def test_ops_the_byte_kernels_do_not_cover_stay() -> None:
    """A 3-D MaxPool (the runtime's uint8 pool is 1-D/2-D) and a tf_crop_and_resize Resize (its
    extrapolation value is a float) keep their Q/DQ."""
    s, z = numpy_helper.from_array(np.array(0.1, np.float32), "s"), \
        numpy_helper.from_array(np.array(3, np.uint8), "z")
    roi = numpy_helper.from_array(np.array([0, 0, 0, 0, 1, 1, 1, 1], np.float32), "roi")
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "sc")
    nodes = [
        helper.make_node("DequantizeLinear", ["v", "s", "z"], ["vd"]),
        helper.make_node("MaxPool", ["vd"], ["vp"], kernel_shape=[2, 2, 2]),
        helper.make_node("QuantizeLinear", ["vp", "s", "z"], ["vq"]),
        helper.make_node("DequantizeLinear", ["x", "s", "z"], ["xd"]),
        helper.make_node("Resize", ["xd", "roi", "sc"], ["xr"], mode="nearest",
                         coordinate_transformation_mode="tf_crop_and_resize"),
        helper.make_node("QuantizeLinear", ["xr", "s", "z"], ["xq"]),
    ]
    graph = helper.make_graph(
        nodes, "stay", [helper.make_tensor_value_info("v", TensorProto.UINT8, [1, 1, 4, 4, 4]),
                        helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 1, 4, 4])],
        [helper.make_tensor_value_info("vq", TensorProto.UINT8, None),
         helper.make_tensor_value_info("xq", TensorProto.UINT8, None)], [s, z, roi, scales])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert fuse_byte_ops(model) == 0
    assert [n.op_type for n in model.graph.node].count("QuantizeLinear") == 2

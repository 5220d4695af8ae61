# SPDX-License-Identifier: Apache-2.0
"""The non-convolution fast paths of the real models at their own sizes, with 1 and 3 threads,
against onnxruntime: large enough that the work is split across threads (per-thread scratch
slots of the stride-1 MaxPool, row ranges of nearest Resize, pieces of Concat / Split rows: each
case is above pool_for's 65536 units, a copy counting half a unit a byte, a clamp an eighth of
one an element).
test_ops_conformance.py covers the same kernels on small shapes (one thread); the kernels
themselves are checked against naive loops natively and under qemu (test_vector_math.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pytest
from graph_runner import run_device, run_ort
from onnx import TensorProto, helper, numpy_helper
from sdk_host import SdkBuild

RNG = np.random.default_rng(77)


def _model(node: onnx.NodeProto, inputs: dict[str, np.ndarray],
           consts: dict[str, np.ndarray] | None = None, outputs: int = 1) -> onnx.ModelProto:
    outs = [f"y{i}" for i in range(outputs)]
    node.output[:] = outs
    graph = helper.make_graph(
        [node], node.op_type,
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, v.shape) for k, v in inputs.items()],
        [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in outs],
        [numpy_helper.from_array(v, k) for k, v in (consts or {}).items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return onnx.shape_inference.infer_shapes(model)


def _x(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def _cases() -> dict[str, tuple[onnx.ModelProto, dict[str, np.ndarray]]]:
    cases: dict[str, tuple[onnx.ModelProto, dict[str, np.ndarray]]] = {}

    def add(name: str, node: onnx.NodeProto, inputs: dict[str, np.ndarray], **kw: Any) -> None:
        cases[name] = (_model(node, inputs, **kw), inputs)

    # YOLO's neck: x2 nearest upsampling, SPPF pooling, the C2f / C3k2 concatenations and splits;
    # ResNet's stem pooling.
    add("resize_x2", helper.make_node("Resize", ["x", "", "sc"], [], mode="nearest",
                                      coordinate_transformation_mode="asymmetric",
                                      nearest_mode="floor"),
        {"x": _x(1, 128, 20, 20)}, consts={"sc": np.array([1, 1, 2, 2], np.float32)})
    add("maxpool_sppf", helper.make_node("MaxPool", ["x"], [], kernel_shape=[5, 5],
                                         pads=[2, 2, 2, 2]), {"x": _x(1, 128, 20, 20)})
    add("maxpool_resnet", helper.make_node("MaxPool", ["x"], [], kernel_shape=[3, 3],
                                           pads=[1, 1, 1, 1], strides=[2, 2]),
        {"x": _x(1, 64, 56, 56)})
    add("concat_3", helper.make_node("Concat", ["a", "b", "c"], [], axis=1),
        {"a": _x(1, 32, 40, 40), "b": _x(1, 16, 40, 40), "c": _x(1, 64, 40, 40)})
    add("concat_rows", helper.make_node("Concat", ["a", "b"], [], axis=2),
        {"a": _x(2, 40, 300, 30), "b": _x(2, 40, 7, 30)})
    add("split_3", helper.make_node("Split", ["x", "s"], [], axis=1),
        {"x": _x(1, 112, 40, 40)}, consts={"s": np.array([32, 16, 64], np.int64)}, outputs=3)
    # MobileNetV3 / EfficientNet: squeeze-and-excitation (pool, scale) and the activations.
    add("gap", helper.make_node("GlobalAveragePool", ["x"], []), {"x": _x(1, 96, 56, 56)})
    add("se_scale", helper.make_node("Mul", ["x", "s"], []),
        {"x": _x(1, 240, 28, 28), "s": _x(1, 240, 1, 1)})
    # Residual Adds of one shape: one long row in pieces of 4096 elements, the last one short
    # (MobileNetV2 / V3's 24 x 28 x 28; an odd size that leaves a partial vector too).
    add("residual_add", helper.make_node("Add", ["a", "b"], []),
        {"a": _x(1, 24, 28, 28), "b": _x(1, 24, 28, 28)})
    add("residual_add_odd", helper.make_node("Add", ["a", "b"], []),
        {"a": _x(1, 7, 61, 67), "b": _x(1, 7, 61, 67)})
    add("hardswish", helper.make_node("HardSwish", ["x"], []), {"x": _x(1, 96, 112, 112) * 4})
    add("hardsigmoid", helper.make_node("HardSigmoid", ["x"], [], alpha=0.2, beta=0.5),
        {"x": _x(1, 96, 112, 112) * 4})
    # Detection post-processing: [boxes, 4 + 1 + classes] split into columns and joined again,
    # rows of 4-68 bytes (the fixed-size and word-loop row copies, and plain memcpy above 64);
    # per-box scores scaled by a per-box confidence (one binary_f32_rows call).
    add("box_split", helper.make_node("Split", ["x", "s"], [], axis=1),
        {"x": _x(1500, 35)}, consts={"s": np.array([4, 1, 8, 2, 3, 17], np.int64)}, outputs=6)
    add("box_concat", helper.make_node("Concat", ["a", "b", "c", "d"], [], axis=1),
        {"a": _x(1500, 2), "b": _x(1500, 5), "c": _x(1500, 1), "d": _x(1500, 16)})
    add("box_scale", helper.make_node("Mul", ["x", "s"], []),
        {"x": _x(1500, 8), "s": _x(1500, 1)})
    add("box_offset", helper.make_node("Sub", ["s", "x"], []),
        {"s": _x(1500, 1), "x": _x(1500, 3)})
    return cases


CASES = _cases()


@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("name", sorted(CASES))
def test_fast_path_matches_onnxruntime(sdk_host: SdkBuild, name: str, threads: int) -> None:
    model, feeds = CASES[name]
    got = run_device(sdk_host.build, model, feeds, threads=threads)
    want = run_ort(model, feeds)
    for out, ref in want.items():
        assert got[out].shape == ref.shape, (name, out)
        np.testing.assert_allclose(got[out], ref, rtol=1e-5, atol=1e-5, err_msg=f"{name} {out}")


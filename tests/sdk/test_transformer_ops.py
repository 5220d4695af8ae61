# SPDX-License-Identifier: Apache-2.0
"""The fast paths of the transformer and layout ops against onnxruntime, at 1 and more threads
and at the sizes of the real models (where they split across threads): GELU lowered from torch's
Erf chain into one Gelu node, Transpose and Slice as strided copies (channel shuffle, attention
heads, NCHW <-> NHWC), Softmax over attention rows, LayerNormalization, batched MatMul and the
M = 1 Gemm / MatMul (GEMV) path. The kernels' own NEON / x86 checks against naive references
are tests/sdk/test_vector_math.py."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from graph_runner import run_device, run_ort
from onnx import TensorProto, helper, numpy_helper
from sdk_host import SdkBuild

from edgepack.lower import device_graph as dg
from edgepack.lower.lowering import lower

RNG = np.random.default_rng(20261130)


def _model(nodes: list[onnx.NodeProto], inputs: dict[str, list[int]], outputs: list[str],
           inits: dict[str, np.ndarray] | None = None) -> onnx.ModelProto:
    g = helper.make_graph(
        nodes, "t",
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, v) for k, v in inputs.items()],
        [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in outputs],
        [numpy_helper.from_array(v, k) for k, v in (inits or {}).items()],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return onnx.shape_inference.infer_shapes(m)


def _check(sdk: SdkBuild, model: onnx.ModelProto, feeds: dict[str, np.ndarray],
           atol: float = 1e-5, rtol: float = 1e-5, threads: tuple[int, ...] = (1, 2, 3)) -> None:
    want = run_ort(model, feeds)
    for t in threads:
        got = run_device(sdk.build, model, feeds, threads=t)
        for name, ref in want.items():
            assert got[name].shape == ref.shape
            np.testing.assert_allclose(got[name], ref, rtol=rtol, atol=atol,
                                       err_msg=f"{name}, {t} threads")


def _gelu_nodes(x: str = "x", out: str = "out", scale_op: str = "Div") -> list[onnx.NodeProto]:
    """torch.nn.GELU() as exported: x * (erf(x / sqrt 2) + 1) * 0.5."""
    return [helper.make_node(scale_op, [x, "c_scale"], ["d"]),
            helper.make_node("Erf", ["d"], ["e"]),
            helper.make_node("Add", ["e", "c_one"], ["a"]),
            helper.make_node("Mul", [x, "a"], ["m"]),
            helper.make_node("Mul", ["m", "c_half"], [out])]


def _gelu_consts(scale_op: str = "Div") -> dict[str, np.ndarray]:
    s = np.sqrt(2.0) if scale_op == "Div" else np.sqrt(0.5)
    return {"c_scale": np.array(s, np.float32), "c_one": np.array(1.0, np.float32),
            "c_half": np.array(0.5, np.float32)}


@pytest.mark.parametrize("scale_op", ["Div", "Mul"])
def test_gelu_chain_lowers_to_one_node_and_matches_onnxruntime(sdk_host: SdkBuild,
                                                                scale_op: str) -> None:
    shape = [1, 160, 56, 56]  # ConvNeXt-atto's first MLP activation: split across threads
    m = _model(_gelu_nodes(scale_op=scale_op), {"x": shape}, ["out"], _gelu_consts(scale_op))
    g = dg.parse(lower(m))
    assert [n.op_type for n in g.nodes] == ["Gelu"]
    assert g.nodes[0].attrs["approximate"].value == "none"
    x = (RNG.standard_normal(shape) * 3).astype(np.float32)
    x.reshape(-1)[:6] = [0.0, 1e-6, -1e-4, 9.0, -9.0, -30.0]  # series branch, tails
    _check(sdk_host, m, {"x": x}, atol=2e-6, rtol=1e-5)


def test_gelu_chain_with_another_reader_is_not_fused(sdk_host: SdkBuild) -> None:
    nodes = [*_gelu_nodes(out="g"), helper.make_node("Add", ["g", "e"], ["out"])]
    m = _model(nodes, {"x": [2, 7]}, ["out"], _gelu_consts())
    assert "Gelu" not in [n.op_type for n in dg.parse(lower(m)).nodes]
    _check(sdk_host, m, {"x": RNG.standard_normal((2, 7)).astype(np.float32)}, threads=(1,))


def test_gelu_with_other_constants_is_not_fused() -> None:
    consts = {**_gelu_consts(), "c_half": np.array(0.25, np.float32)}
    m = _model(_gelu_nodes(), {"x": [3, 4]}, ["out"], consts)
    assert "Gelu" not in [n.op_type for n in dg.parse(lower(m)).nodes]


@pytest.mark.parametrize(("shape", "perm"), [
    ([1, 2, 58, 28, 28], [0, 2, 1, 3, 4]),  # ShuffleNet's channel shuffle
    ([1, 197, 3, 3, 64], [2, 0, 3, 1, 4]),  # ViT's q/k/v heads
    ([1, 40, 56, 56], [0, 2, 3, 1]),        # ConvNeXt NCHW -> NHWC (2-D tiles)
    ([1, 56, 56, 40], [0, 3, 1, 2]),
    ([4, 4, 256, 16], [0, 1, 3, 2]),
    ([3, 5, 7], [2, 1, 0]),                 # no contiguous dimension
])
def test_transpose_matches_onnxruntime(sdk_host: SdkBuild, shape: list[int],
                                       perm: list[int]) -> None:
    m = _model([helper.make_node("Transpose", ["x"], ["out"], perm=perm)], {"x": shape}, ["out"])
    x = RNG.standard_normal(shape).astype(np.float32)
    _check(sdk_host, m, {"x": x}, atol=0, rtol=0)


@pytest.mark.parametrize(("shape", "starts", "ends", "axes", "steps"), [
    ([1, 232, 28, 28], [0], [116], [1], [1]),       # ShuffleNet's channel split, both halves
    ([1, 232, 28, 28], [116], [232], [1], [1]),
    ([1, 64, 130, 131], [1, 2], [129, 130], [2, 3], [2, 3]),
    ([6, 300, 257], [5, 3], [-7, 0], [1, 2], [-2, 1]),
])
def test_slice_matches_onnxruntime(sdk_host: SdkBuild, shape: list[int], starts: list[int],
                                   ends: list[int], axes: list[int], steps: list[int]) -> None:
    consts = {"s": np.array(starts, np.int64), "e": np.array(ends, np.int64),
              "a": np.array(axes, np.int64), "t": np.array(steps, np.int64)}
    m = _model([helper.make_node("Slice", ["x", "s", "e", "a", "t"], ["out"])], {"x": shape},
               ["out"], consts)
    _check(sdk_host, m, {"x": RNG.standard_normal(shape).astype(np.float32)}, atol=0, rtol=0)


@pytest.mark.parametrize(("shape", "axis"), [([4, 4, 256, 256], -1), ([1, 3, 197, 197], -1),
                                             ([2, 50, 7], 1)])
def test_softmax_matches_onnxruntime(sdk_host: SdkBuild, shape: list[int], axis: int) -> None:
    m = _model([helper.make_node("Softmax", ["x"], ["out"], axis=axis)], {"x": shape}, ["out"])
    x = (RNG.standard_normal(shape) * 4).astype(np.float32)
    _check(sdk_host, m, {"x": x}, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize(("shape", "axis"), [([1, 197, 192], -1), ([1, 56, 56, 40], -1),
                                             ([1, 1024, 64], -1), ([2, 3, 5, 7], 2)])
def test_layernorm_matches_onnxruntime(sdk_host: SdkBuild, shape: list[int], axis: int) -> None:
    block = shape[axis:]
    consts = {"s": RNG.standard_normal(block).astype(np.float32),
              "b": RNG.standard_normal(block).astype(np.float32)}
    m = _model([helper.make_node("LayerNormalization", ["x", "s", "b"], ["out"], axis=axis,
                                 epsilon=1e-6)], {"x": shape}, ["out"], consts)
    x = (RNG.standard_normal(shape) * 2 + 3).astype(np.float32)  # a mean far from 0
    _check(sdk_host, m, {"x": x}, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize(("a_shape", "b_shape"), [
    ([4, 4, 256, 16], [4, 4, 16, 256]),   # MobileViT attention scores
    ([4, 4, 256, 256], [4, 4, 256, 16]),  # and their weighted sum
    ([1, 3, 197, 64], [1, 3, 64, 197]),   # ViT
    ([2, 1, 5, 3], [3, 3, 4]),            # broadcast batch
])
def test_batched_matmul_matches_onnxruntime(sdk_host: SdkBuild, a_shape: list[int],
                                            b_shape: list[int]) -> None:
    m = _model([helper.make_node("MatMul", ["a", "b"], ["out"])], {"a": a_shape, "b": b_shape},
               ["out"])
    feeds = {"a": RNG.standard_normal(a_shape).astype(np.float32),
             "b": RNG.standard_normal(b_shape).astype(np.float32)}
    _check(sdk_host, m, feeds, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(("k", "n", "trans_b", "bias"), [
    (1024, 1000, 1, True),   # the classifier of MobileNetV3 / ShuffleNet
    (1280, 1000, 1, True),
    (37, 11, 0, False),      # odd sizes, B not transposed
    (320, 1, 1, True),
])
def test_gemm_with_one_row_matches_onnxruntime(sdk_host: SdkBuild, k: int, n: int, trans_b: int,
                                               bias: bool) -> None:
    w = RNG.standard_normal((n, k) if trans_b else (k, n)).astype(np.float32)
    consts = {"w": w}
    ins = ["x", "w"]
    if bias:
        consts["c"] = RNG.standard_normal(n).astype(np.float32)
        ins.append("c")
    m = _model([helper.make_node("Gemm", ins, ["out"], transB=trans_b, alpha=0.75, beta=1.5)],
               {"x": [1, k]}, ["out"], consts)
    _check(sdk_host, m, {"x": RNG.standard_normal((1, k)).astype(np.float32)}, atol=1e-4,
           rtol=1e-4)


def test_transposed_matmul_keeps_a_fused_relu(sdk_host: SdkBuild) -> None:
    """Few columns, many rows: the product runs transposed (C^T = B^T A^T); the Relu lowering
    fuses into the MatMul is applied to it as well."""
    nodes = [helper.make_node("MatMul", ["a", "b"], ["m"]),
             helper.make_node("Relu", ["m"], ["out"])]
    m = _model(nodes, {"a": [3, 96, 40], "b": [3, 40, 8]}, ["out"])
    g = dg.parse(lower(m))
    assert [n.op_type for n in g.nodes] == ["MatMul"]
    feeds = {"a": RNG.standard_normal((3, 96, 40)).astype(np.float32),
             "b": RNG.standard_normal((3, 40, 8)).astype(np.float32)}
    _check(sdk_host, m, feeds, atol=1e-4, rtol=1e-4)

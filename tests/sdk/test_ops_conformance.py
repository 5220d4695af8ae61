# SPDX-License-Identifier: Apache-2.0
"""Every CPU op vs onnxruntime: single-node ONNX graphs lowered and run by edgepack-graph-run.

Tolerances: float32 rtol 1e-4, atol 1e-5, except where a case says otherwise (reductions over
many terms and transcendental functions accumulate differently: atol 1e-4; Resize linear and
RoiAlign interpolate in float32 with a different operation order: atol 1e-4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from graph_runner import run_device, run_ort
from onnx import TensorProto, helper, numpy_helper
from sdk_host import SdkBuild

RNG = np.random.default_rng(1234)
NP_TO_ONNX = {np.float32: TensorProto.FLOAT, np.uint8: TensorProto.UINT8,
              np.int32: TensorProto.INT32, np.int64: TensorProto.INT64, np.bool_: TensorProto.BOOL,
              np.int8: TensorProto.INT8, np.int16: TensorProto.INT16,
              np.float16: TensorProto.FLOAT16, np.float64: TensorProto.DOUBLE}


@pytest.fixture(scope="module")
def build(sdk_host: SdkBuild) -> Path:
    return sdk_host.build


def f32(*shape: int, lo: float = -2.0, hi: float = 2.0) -> np.ndarray:
    return RNG.uniform(lo, hi, size=shape).astype(np.float32)


@dataclass
class Case:
    id: str
    op: str
    inputs: dict[str, np.ndarray]            # graph inputs (fed at run time)
    consts: dict[str, np.ndarray | np.generic] = field(default_factory=dict)  # initializers
    order: list[str] = field(default_factory=list)  # node input order ("" = omitted)
    attrs: dict[str, Any] = field(default_factory=dict)
    outputs: int = 1
    atol: float = 1e-5
    rtol: float = 1e-4

    def model(self) -> onnx.ModelProto:
        order = self.order or [*self.inputs, *self.consts]
        outs = [f"y{i}" for i in range(self.outputs)]
        node = helper.make_node(self.op, order, outs, name=f"{self.op}_node", **self.attrs)
        g = helper.make_graph(
            [node], self.id,
            [helper.make_tensor_value_info(k, NP_TO_ONNX[v.dtype.type], v.shape)
             for k, v in self.inputs.items()],
            [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in outs],
            [numpy_helper.from_array(np.asarray(v), k) for k, v in self.consts.items()],
        )
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = 8
        return onnx.shape_inference.infer_shapes(m)


def i64(*v: int) -> np.ndarray:
    return np.array(v, dtype=np.int64)


def cases() -> list[Case]:
    c: list[Case] = []
    # Conv family
    c.append(Case("conv_basic", "Conv", {"x": f32(1, 3, 9, 9)}, {"w": f32(4, 3, 3, 3)}))
    c.append(Case("conv_asym_pads_stride_dil", "Conv", {"x": f32(2, 4, 11, 10)},
                  {"w": f32(6, 4, 3, 2), "b": f32(6)},
                  attrs={"pads": [1, 0, 2, 1], "strides": [2, 1], "dilations": [2, 1]}))
    c.append(Case("conv_groups", "Conv", {"x": f32(1, 6, 8, 8)}, {"w": f32(9, 2, 3, 3)},
                  attrs={"group": 3, "pads": [1, 1, 1, 1]}))
    c.append(Case("conv_depthwise_same_upper", "Conv", {"x": f32(1, 5, 7, 7)},
                  {"w": f32(5, 1, 3, 3)}, attrs={"group": 5, "auto_pad": "SAME_UPPER",
                                                  "strides": [2, 2]}))
    c.append(Case("conv_transpose", "ConvTranspose", {"x": f32(1, 4, 5, 5)}, {"w": f32(4, 3, 3, 3)},
                  attrs={"strides": [2, 2], "pads": [1, 1, 0, 0], "output_padding": [1, 1]}))
    c.append(Case("conv_transpose_groups_dil", "ConvTranspose", {"x": f32(1, 4, 4, 6)},
                  {"w": f32(4, 2, 2, 3), "b": f32(4)},
                  attrs={"group": 2, "dilations": [2, 1], "strides": [1, 2]}))
    c.append(Case("gemm_trans", "Gemm", {"a": f32(7, 5)}, {"b": f32(3, 7), "c": f32(3)},
                  attrs={"transA": 1, "transB": 1, "alpha": 0.5, "beta": 2.0}))
    c.append(Case("gemm_plain", "Gemm", {"a": f32(4, 6)}, {"b": f32(6, 5), "c": f32(4, 5)}))
    # One row times a constant B: the GEMV paths on B in place (rows of B with transB, one pass
    # over B's rows without), with odd sizes past a vector width.
    c.append(Case("gemm_vector", "Gemm", {"a": f32(1, 37)}, {"b": f32(37, 45), "c": f32(45)},
                  attrs={"alpha": 0.5}))
    c.append(Case("gemm_vector_trans_b", "Gemm", {"a": f32(1, 37)},
                  {"b": f32(45, 37), "c": f32(45)}, attrs={"transB": 1, "beta": 2.0}))
    c.append(Case("matmul_batched_bcast", "MatMul", {"a": f32(2, 3, 4, 5), "b": f32(3, 5, 6)}))
    c.append(Case("matmul_1d", "MatMul", {"a": f32(5), "b": f32(2, 5, 3)}))
    # Element-wise with broadcasting
    for op in ("Add", "Sub", "Mul", "Div"):
        c.append(Case(f"{op.lower()}_bcast", op, {"a": f32(2, 3, 4), "b": f32(3, 1)}))
    c.append(Case("add_int64", "Add", {"a": RNG.integers(-9, 9, (3, 4)).astype(np.int64),
                                        "b": RNG.integers(-9, 9, (4,)).astype(np.int64)}))
    c.append(Case("pow", "Pow", {"a": f32(3, 4, lo=0.1, hi=2)}, {"b": np.array([2.5], np.float32)},
                  atol=1e-4))
    # x^2 (YOLO box decodes) runs as x * x: the same floats as onnxruntime's, exactly
    c.append(Case("pow_square", "Pow", {"a": f32(3, 20, 20, 2, lo=-3, hi=3)},
                  {"b": np.array(2.0, np.float32)}, atol=0.0, rtol=0.0))
    c.append(Case("pow_square_input", "Pow", {"a": f32(2, 7, lo=-3, hi=3),
                                              "b": np.array([2.0], np.float32)},
                  atol=0.0, rtol=0.0))
    for op in ("Sqrt", "Exp", "Neg", "Relu", "Sigmoid", "Tanh", "HardSwish"):
        lo = 0.0 if op == "Sqrt" else -4.0
        c.append(Case(op.lower(), op, {"x": f32(2, 3, 5, lo=lo, hi=4)}, atol=1e-5))
    c.append(Case("leaky_relu", "LeakyRelu", {"x": f32(4, 5)}, attrs={"alpha": 0.2}))
    c.append(Case("hard_sigmoid", "HardSigmoid", {"x": f32(4, 5, lo=-5, hi=5)}))
    c.append(Case("clip_consts", "Clip", {"x": f32(4, 5)},
                  {"lo": np.float32(-0.5), "hi": np.float32(0.7)}))
    c.append(Case("clip_min_only", "Clip", {"x": f32(4, 5)}, {"lo": np.float32(0.1)},
                  order=["x", "lo"]))
    c.append(Case("softmax_axis1", "Softmax", {"x": f32(2, 5, 3)}, attrs={"axis": 1}))
    c.append(Case("softmax_neg_axis", "Softmax", {"x": f32(2, 5, 3)}, attrs={"axis": -1}))
    # a strided axis wider than one column tile (64), with a partial tile: YOLO's DFL shape
    c.append(Case("softmax_dfl_axis1", "Softmax", {"x": f32(2, 16, 4, 37, lo=-8, hi=8)},
                  attrs={"axis": 1}))
    c.append(Case("batchnorm", "BatchNormalization", {"x": f32(2, 3, 4, 4)},
                  {"s": f32(3), "b": f32(3), "m": f32(3), "v": f32(3, lo=0.5, hi=2)},
                  attrs={"epsilon": 1e-3}))
    # Pools
    c.append(Case("maxpool_pads", "MaxPool", {"x": f32(1, 2, 9, 9)},
                  attrs={"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 0, 1, 1]}))
    c.append(Case("maxpool_ceil_dil", "MaxPool", {"x": f32(1, 2, 10, 9)},
                  attrs={"kernel_shape": [2, 3], "strides": [2, 2], "ceil_mode": 1,
                         "dilations": [2, 1]}))
    c.append(Case("avgpool_exclude_pad", "AveragePool", {"x": f32(1, 2, 8, 8)},
                  attrs={"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}))
    c.append(Case("avgpool_include_pad", "AveragePool", {"x": f32(1, 2, 8, 7)},
                  attrs={"kernel_shape": [3, 2], "pads": [1, 1, 1, 0], "strides": [2, 2],
                         "count_include_pad": 1}))
    c.append(Case("global_avgpool", "GlobalAveragePool", {"x": f32(2, 3, 5, 4)}))
    # Shape ops
    c.append(Case("flatten", "Flatten", {"x": f32(2, 3, 4)}, attrs={"axis": -1}))
    c.append(Case("reshape_neg", "Reshape", {"x": f32(2, 3, 4)}, {"s": i64(0, -1)}))
    c.append(Case("transpose", "Transpose", {"x": f32(2, 3, 4, 5)}, attrs={"perm": [0, 2, 3, 1]}))
    c.append(Case("transpose_default", "Transpose", {"x": f32(2, 3, 4)}))
    c.append(Case("concat_neg_axis", "Concat", {"a": f32(2, 3), "b": f32(2, 5)},
                  attrs={"axis": -1}))
    c.append(Case("split_sizes", "Split", {"x": f32(2, 7)}, {"s": i64(3, 4)}, attrs={"axis": 1},
                  outputs=2))
    c.append(Case("split_even", "Split", {"x": f32(6, 2)}, outputs=3))
    c.append(Case("slice_neg_steps", "Slice", {"x": f32(5, 6, 4)},
                  {"st": i64(-1, 1), "en": i64(-100, 5), "ax": i64(1, 0), "sp": i64(-2, 2)}))
    c.append(Case("squeeze", "Squeeze", {"x": f32(1, 3, 1, 4)}, {"ax": i64(-2)}))
    c.append(Case("unsqueeze", "Unsqueeze", {"x": f32(3, 4)}, {"ax": i64(0, -1)}))
    c.append(Case("gather_neg_idx", "Gather", {"x": f32(5, 4)},
                  {"i": np.array([[0, -1], [2, 3]], dtype=np.int64)}, attrs={"axis": 0}))
    c.append(Case("gather_axis1_int32", "Gather", {"x": f32(3, 6, 2)},
                  {"i": np.array([5, 0, 2], dtype=np.int32)}, attrs={"axis": 1}))
    c.append(Case("pad_constant", "Pad", {"x": f32(2, 3)},
                  {"p": i64(1, 0, 0, 2), "v": np.float32(1.5)}))
    c.append(Case("pad_reflect", "Pad", {"x": f32(1, 2, 4, 5)}, {"p": i64(0, 0, 2, 1, 0, 0, 1, 3)},
                  attrs={"mode": "reflect"}))
    c.append(Case("pad_edge", "Pad", {"x": f32(3, 4)}, {"p": i64(2, 1, 1, 2)},
                  attrs={"mode": "edge"}))
    c.append(Case("cast_f2i", "Cast", {"x": f32(3, 4, lo=-50, hi=50)},
                  attrs={"to": TensorProto.INT32}))
    c.append(Case("cast_u8_f", "Cast", {"x": RNG.integers(0, 255, (3, 4)).astype(np.uint8)},
                  attrs={"to": TensorProto.FLOAT}))
    c.append(Case("cast_i64_f", "Cast", {"x": RNG.integers(-99, 99, (5,)).astype(np.int64)},
                  attrs={"to": TensorProto.FLOAT}))
    # Resize
    for mode, ctm, nm in [("nearest", "asymmetric", "floor"),
                          ("nearest", "half_pixel", "round_prefer_floor"),
                          ("nearest", "align_corners", "round_prefer_ceil"),
                          ("linear", "half_pixel", None), ("linear", "align_corners", None),
                          ("linear", "asymmetric", None), ("linear", "pytorch_half_pixel", None)]:
        attrs: dict[str, Any] = {"mode": mode, "coordinate_transformation_mode": ctm}
        if nm:
            attrs["nearest_mode"] = nm
        # align_corners with a non-integral in * scale: onnxruntime divides by the rounded
        # output length, the ONNX spec and reference by in * scale (edgepack follows ONNX,
        # see the node tests); width 8 x 1.5 keeps both equal here.
        width = 8 if ctm == "align_corners" else 7
        c.append(Case(f"resize_{mode}_{ctm}_scales", "Resize", {"x": f32(1, 2, 5, width)},
                      {"roi": np.zeros(0, np.float32),
                       "sc": np.array([1, 1, 2.0, 1.5], np.float32)},
                      attrs=attrs, atol=1e-4))
        c.append(Case(f"resize_{mode}_{ctm}_sizes", "Resize", {"x": f32(1, 2, 8, 6)},
                      {"sz": i64(1, 2, 3, 11)}, order=["x", "", "", "sz"], attrs=attrs, atol=1e-4))
    # Reductions
    c.append(Case("reduce_mean_keep", "ReduceMean", {"x": f32(2, 3, 4)}, attrs={"axes": [-1, 0]},
                  atol=1e-5))
    c.append(Case("reduce_max_nokeep", "ReduceMax", {"x": f32(2, 3, 4)}, attrs={"axes": [1],
                                                                              "keepdims": 0}))
    c.append(Case("reduce_mean_all", "ReduceMean", {"x": f32(3, 5)}, attrs={"keepdims": 0}))
    c.append(Case("argmax", "ArgMax", {"x": f32(3, 5, 2)}, attrs={"axis": 1}))
    ties = np.array([[1, 3, 3, 0], [2, 2, 1, 2]], dtype=np.float32)
    c.append(Case("argmax_last_ties", "ArgMax", {"x": ties}, attrs={"axis": -1, "keepdims": 0,
                                                                    "select_last_index": 1}))
    c.append(Case("topk_ties", "TopK", {"x": np.array([[1, 3, 3, 0, 3, 2]], np.float32)},
                  {"k": i64(4)}, outputs=2))
    c.append(Case("topk_smallest_axis0", "TopK", {"x": f32(6, 3)}, {"k": i64(2)},
                  attrs={"axis": 0, "largest": 0}, outputs=2))
    # Comparisons + Where
    a, b = f32(3, 4), f32(4)
    b[1] = a[0, 1]
    for op in ("Equal", "Greater", "Less"):
        c.append(Case(op.lower(), op, {"a": a, "b": b}))
    c.append(Case("where", "Where", {"c": RNG.random((3, 1)) > 0.5, "x": f32(3, 4), "y": f32(4)}))
    c += _new_op_cases()
    c += _row_kernel_cases()  # last: the cases above keep their random values
    return c


def ints(lo: int, hi: int, *shape: int, dtype: type = np.int64) -> np.ndarray:
    return RNG.integers(lo, hi, size=shape).astype(dtype)


def _new_op_cases() -> list[Case]:
    """Ops added for exported models (LayerNorm, Erf, Einsum, GatherElements...) and the
    wrong answers fixed with them (Clip min > max, ConvTranspose output_shape)."""
    c: list[Case] = []
    c.append(Case("layernorm_last", "LayerNormalization", {"x": f32(2, 5, 8)},
                  {"s": f32(8), "b": f32(8)}, attrs={"axis": -1, "epsilon": 1e-5}, atol=1e-4))
    c.append(Case("layernorm_axis1_bcast_scale", "LayerNormalization", {"x": f32(2, 3, 4)},
                  {"s": f32(1, 4)}, attrs={"axis": 1}, atol=1e-4))
    c.append(Case("instancenorm", "InstanceNormalization", {"x": f32(2, 3, 5, 4)},
                  {"s": f32(3), "b": f32(3)}, atol=1e-4))
    for op, lo in (("Erf", -3.0), ("Abs", -3.0), ("Log", 0.1), ("Floor", -3.0), ("Ceil", -3.0),
                   ("Reciprocal", 0.5), ("Sign", -3.0), ("Softplus", -30.0), ("Softsign", -3.0),
                   ("Sin", -3.0), ("Cos", -3.0)):
        c.append(Case(op.lower(), op, {"x": f32(3, 7, lo=lo, hi=30.0 if op == "Softplus" else 3.0)},
                      atol=1e-5))
    c.append(Case("round_half_even", "Round",
                  {"x": np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.4, -0.6], np.float32)}))
    c.append(Case("elu", "Elu", {"x": f32(4, 5)}, attrs={"alpha": 0.7}))
    c.append(Case("abs_int32", "Abs", {"x": ints(-9, 9, 3, 4, dtype=np.int32)}))
    c.append(Case("clip_min_above_max", "Clip", {"x": f32(4, 5)},
                  {"lo": np.array(0.5, np.float32), "hi": np.array(-0.5, np.float32)}))
    c.append(Case("clip_int8", "Clip", {"x": ints(-100, 100, 4, 5, dtype=np.int8)},
                  {"lo": np.array(-20, np.int8), "hi": np.array(30, np.int8)}))
    c.append(Case("sum3_bcast", "Sum", {"a": f32(2, 3, 4), "b": f32(3, 1), "c": f32(4)}))
    c.append(Case("mean2", "Mean", {"a": f32(3, 4), "b": f32(4)}))
    c.append(Case("log_softmax_axis1", "LogSoftmax", {"x": f32(2, 5, 3)}, attrs={"axis": 1},
                  atol=1e-5))
    c.append(Case("hardmax_axis0_ties", "Hardmax",
                  {"x": np.array([[1, 3, 2], [3, 3, 0], [0, 1, 2]], np.float32)},
                  attrs={"axis": 0}))
    c.append(Case("selu", "Selu", {"x": f32(4, 5)}, atol=1e-5))
    c.append(Case("celu", "Celu", {"x": f32(4, 5)}, attrs={"alpha": 0.5}, atol=1e-5))
    c.append(Case("thresholded_relu", "ThresholdedRelu", {"x": f32(4, 5)}, attrs={"alpha": 0.3}))
    c.append(Case("shrink", "Shrink", {"x": f32(4, 5)}, attrs={"lambd": 0.4, "bias": 0.1}))
    c.append(Case("max3_bcast", "Max", {"a": f32(2, 3, 4), "b": f32(3, 1), "c": f32(4)}))
    c.append(Case("min2_int64", "Min", {"a": ints(-9, 9, 3, 4), "b": ints(-9, 9, 4)}))
    c.append(Case("prelu_channel", "PRelu", {"x": f32(2, 3, 4, 4)}, {"s": f32(3, 1, 1)}))
    c.append(Case("mod_int_sign", "Mod", {"a": ints(-20, 20, 3, 4), "b": ints(1, 6, 4)}))
    c.append(Case("mod_fmod_float", "Mod", {"a": f32(3, 4, lo=-5, hi=5)},
                  {"b": np.array([1.5, -2.0, 0.7, 3.0], np.float32)}, attrs={"fmod": 1}))
    bits = {"a": RNG.random((3, 4)) > 0.5, "b": RNG.random((4,)) > 0.5}
    for op in ("And", "Or", "Xor"):
        c.append(Case(op.lower(), op, dict(bits)))
    c.append(Case("not", "Not", {"x": RNG.random((3, 4)) > 0.5}))
    a, b = f32(3, 4), f32(4)
    b[2] = a[1, 2]
    for op in ("GreaterOrEqual", "LessOrEqual"):
        c.append(Case(op.lower(), op, {"a": a, "b": b}))
    c.append(Case("add_int8", "Add", {"a": ints(-50, 50, 3, 4, dtype=np.int8),
                                       "b": ints(-50, 50, 4, dtype=np.int8)}))
    c.append(Case("mul_int16", "Mul", {"a": ints(-99, 99, 3, 4, dtype=np.int16),
                                        "b": ints(-99, 99, 3, 1, dtype=np.int16)}))
    c.append(Case("cast_f32_f16", "Cast", {"x": f32(3, 5, lo=-70000, hi=70000)},
                  attrs={"to": TensorProto.FLOAT16}))
    c.append(Case("cast_f16_f32", "Cast", {"x": f32(3, 5).astype(np.float16)},
                  attrs={"to": TensorProto.FLOAT}))
    c.append(Case("castlike_i8", "CastLike", {"x": f32(3, 5, lo=-100, hi=100)},
                  {"like": np.zeros(1, np.int8)}))
    # float16 computed in float32 between Casts (the table's via_float32)
    c.append(Case("add_f16", "Add", {"a": f32(3, 4).astype(np.float16),
                                      "b": f32(4).astype(np.float16)}))
    c.append(Case("sigmoid_f16", "Sigmoid", {"x": f32(3, 4).astype(np.float16)}, atol=1e-3,
                  rtol=1e-3))
    c.append(Case("conv_f16", "Conv", {"x": f32(1, 3, 6, 6).astype(np.float16)},
                  {"w": f32(4, 3, 3, 3).astype(np.float16)}, atol=1e-2, rtol=1e-2))
    c.append(Case("max_f16", "Max", {"a": f32(3, 4).astype(np.float16),
                                      "b": f32(4).astype(np.float16)}))
    c.append(Case("reduce_sum_axes_input", "ReduceSum", {"x": f32(2, 3, 4)}, {"ax": i64(-1, 0)},
                  atol=1e-5))
    c.append(Case("reduce_sum_noop", "ReduceSum", {"x": f32(2, 3)},
                  {"ax": np.zeros(0, np.int64)}, attrs={"noop_with_empty_axes": 1}))
    for op in ("ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceSumSquare",
               "ReduceLogSumExp"):
        c.append(Case(op.lower(), op, {"x": f32(2, 3, 4)}, attrs={"axes": [1]}, atol=1e-5))
    c.append(Case("reduce_log_sum", "ReduceLogSum", {"x": f32(2, 3, 4, lo=0.1, hi=2)},
                  attrs={"axes": [2], "keepdims": 0}, atol=1e-5))
    c.append(Case("argmin_axis1", "ArgMin", {"x": f32(3, 5, 2)}, attrs={"axis": 1}))
    c.append(Case("expand", "Expand", {"x": f32(3, 1)}, {"s": i64(2, 1, 4)}))
    c.append(Case("tile", "Tile", {"x": f32(2, 3)}, {"r": i64(2, 3)}))
    for mode in ("DCR", "CRD"):
        c.append(Case(f"depth_to_space_{mode}", "DepthToSpace", {"x": f32(1, 8, 2, 3)},
                      attrs={"blocksize": 2, "mode": mode}))
    c.append(Case("space_to_depth", "SpaceToDepth", {"x": f32(1, 2, 4, 6)},
                  attrs={"blocksize": 2}))
    c.append(Case("gather_elements_neg", "GatherElements", {"x": f32(3, 4)},
                  {"i": np.array([[0, -1, 2, 1], [2, 0, -3, 1]], np.int64)}, attrs={"axis": 0}))
    c.append(Case("gather_nd_batch", "GatherND", {"x": f32(2, 3, 4)},
                  {"i": np.array([[[1], [0]], [[2], [1]]], np.int64)}, attrs={"batch_dims": 1}))
    c.append(Case("scatter_nd_add", "ScatterND", {"x": f32(4, 3)},
                  {"i": np.array([[1], [3], [1]], np.int64), "u": f32(3, 3)},
                  attrs={"reduction": "add"}))
    c.append(Case("scatter_elements", "ScatterElements", {"x": f32(3, 3)},
                  {"i": np.array([[1, 0, 2], [0, 2, 1]], np.int64), "u": f32(2, 3)},
                  attrs={"axis": 0}))
    c.append(Case("einsum_attention", "Einsum", {"q": f32(1, 2, 5, 4), "k": f32(1, 2, 6, 4)},
                  attrs={"equation": "bhqd,bhkd->bhqk"}, atol=1e-5))
    c.append(Case("einsum_ellipsis_implicit", "Einsum", {"a": f32(2, 3, 4), "b": f32(2, 4, 5)},
                  attrs={"equation": "...ij,...jk"}, atol=1e-5))
    c.append(Case("conv_1d", "Conv", {"x": f32(1, 3, 12)}, {"w": f32(4, 3, 3), "b": f32(4)},
                  attrs={"pads": [1, 2], "strides": [2]}))
    c.append(Case("conv_transpose_output_shape", "ConvTranspose", {"x": f32(1, 1, 3, 3)},
                  {"w": f32(1, 2, 3, 3)}, attrs={"strides": [3, 2], "output_shape": [10, 8]}))
    c.append(Case("maxpool_1d", "MaxPool", {"x": f32(1, 2, 9)},
                  attrs={"kernel_shape": [3], "strides": [2]}))
    c.append(Case("avgpool_3d", "AveragePool", {"x": f32(1, 2, 4, 5, 6)},
                  attrs={"kernel_shape": [2, 3, 2], "pads": [0, 1, 1, 1, 0, 0]}))
    c.append(Case("maxpool_indices", "MaxPool", {"x": f32(2, 3, 6, 5)},
                  attrs={"kernel_shape": [3, 2], "strides": [2, 2], "pads": [1, 0, 1, 1]},
                  outputs=2))
    c.append(Case("maxpool_uint8", "MaxPool", {"x": ints(0, 255, 1, 2, 5, 5, dtype=np.uint8)},
                  attrs={"kernel_shape": [2, 2]}))
    c.append(Case("resize_cubic", "Resize", {"x": f32(1, 2, 5, 6)},
                  {"roi": np.zeros(0, np.float32), "sc": np.array([1, 1, 1.6, 0.5], np.float32)},
                  attrs={"mode": "cubic"}, atol=1e-4))
    c.append(Case("quantize_u8", "QuantizeLinear", {"x": f32(2, 3, 4, lo=-3, hi=3)},
                  {"s": np.array(0.02, np.float32), "z": np.array(128, np.uint8)}))
    c.append(Case("quantize_i8_axis", "QuantizeLinear", {"x": f32(2, 3, 4, lo=-3, hi=3)},
                  {"s": np.array([0.01, 0.02, 0.05], np.float32),
                   "z": np.array([0, -3, 5], np.int8)}, attrs={"axis": 1}))
    c.append(Case("dequantize_u8", "DequantizeLinear", {"x": ints(0, 255, 2, 5, dtype=np.uint8)},
                  {"s": np.array(0.1, np.float32), "z": np.array(100, np.uint8)}))
    c.append(Case("dequantize_i8_axis", "DequantizeLinear",
                  {"x": ints(-128, 127, 3, 4, dtype=np.int8)},
                  {"s": np.array([0.5, 0.25, 2.0, 1.0], np.float32),
                   "z": np.array([1, 0, -2, 3], np.int8)}, attrs={"axis": 1}))
    c.append(Case("maxpool_indices_column_major", "MaxPool", {"x": f32(1, 2, 5, 4)},
                  attrs={"kernel_shape": [2, 2], "storage_order": 1}, outputs=2))
    c.append(Case("topk_int64", "TopK", {"x": ints(-9, 9, 2, 7)}, {"k": i64(3)}, outputs=2))
    return c


def _row_kernel_cases() -> list[Case]:
    c: list[Case] = []
    # 2-D MaxPool on a padded plane (vectorised passes): YOLO's SPPF, asymmetric pads with
    # ceil_mode, 2 and 6-7 taps (the fixed and the per-tap kernels), ResNet's stride 2, stride 3
    # with dilation (maxpool_pads and maxpool_ceil_dil above too); GlobalAveragePool over planes
    # longer than the 8 summing lanes.
    c.append(Case("maxpool_sppf", "MaxPool", {"x": f32(1, 3, 10, 10)},
                  attrs={"kernel_shape": [5, 5], "pads": [2, 2, 2, 2], "strides": [1, 1]}))
    c.append(Case("maxpool_s1_asym_ceil", "MaxPool", {"x": f32(2, 2, 7, 9)},
                  attrs={"kernel_shape": [3, 2], "pads": [0, 1, 2, 0], "ceil_mode": 1}))
    c.append(Case("maxpool_s1_k7", "MaxPool", {"x": f32(1, 2, 9, 8)},
                  attrs={"kernel_shape": [7, 6], "pads": [3, 3, 3, 2]}))
    c.append(Case("maxpool_s1_k2", "MaxPool", {"x": f32(1, 2, 6, 5)},
                  attrs={"kernel_shape": [2, 2]}))
    c.append(Case("maxpool_resnet", "MaxPool", {"x": f32(1, 3, 12, 11)},
                  attrs={"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "strides": [2, 2]}))
    c.append(Case("maxpool_s3_dil", "MaxPool", {"x": f32(1, 2, 13, 14)},
                  attrs={"kernel_shape": [3, 2], "strides": [3, 3], "dilations": [2, 3],
                         "pads": [1, 0, 0, 1], "ceil_mode": 1}))
    c.append(Case("global_avgpool_odd", "GlobalAveragePool", {"x": f32(1, 5, 13, 11)}))
    # Nearest resize by rows: integer upsampling (factors 2, 3, 5), rows of a resized leading
    # dimension copied, a gather along the last axis, and 1-byte (uint8) elements.
    nearest = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
               "nearest_mode": "floor"}
    for name, x, scales in [("x2", f32(1, 3, 5, 7), [1, 1, 2, 2]),
                            ("x3", f32(2, 2, 3, 4), [1, 1, 3, 3]),
                            ("x5_w", f32(1, 2, 3, 3), [1, 1, 1, 5]),
                            ("channels", f32(1, 3, 4, 5), [1, 2, 2, 1]),
                            ("down", f32(1, 2, 9, 10), [1, 1, 0.5, 0.6]),
                            ("uint8_x2", ints(0, 255, 1, 2, 3, 5, dtype=np.uint8), [1, 1, 2, 2])]:
        c.append(Case(f"resize_nearest_rows_{name}", "Resize", {"x": x},
                      {"roi": np.zeros(0, np.float32), "sc": np.array(scales, np.float32)},
                      attrs=nearest))
    return c


CASES = cases()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_op_matches_onnxruntime(build: Path, case: Case) -> None:
    model = case.model()
    got = run_device(build, model, case.inputs)
    want = run_ort(model, case.inputs)
    for name, ref in want.items():
        assert got[name].shape == ref.shape, f"{case.id}: {name} {got[name].shape} vs {ref.shape}"
        assert got[name].dtype == ref.dtype, f"{case.id}: {name} dtype"
        np.testing.assert_allclose(got[name], ref, rtol=case.rtol, atol=case.atol, err_msg=case.id)

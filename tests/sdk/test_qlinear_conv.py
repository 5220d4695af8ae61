# SPDX-License-Identifier: Apache-2.0
"""QLinearConv (ops/qlinear_conv.cpp, the int8 kernel of kernels/qgemm.h): uint8 activations,
int8 weights per tensor and per output channel, int32 bias.

The reference is exact integer arithmetic in numpy with requantisation rounded in float64 (at
most 1 apart where a value sits on a .5 boundary). onnxruntime's own QLinearConv is not the
reference: on AVX2 without VNNI its u8 x s8 kernel sums pairs of products in int16 with
saturation (vpmaddubsw), so with full-range int8 weights it is off by up to tens of steps
(measured); its quantiser avoids that with 7-bit weights (reduce_range). With AVX-512 VNNI
(vpdpbusd: no int16 step) it is exact, so whether it agrees depends on the CPU the tests run on.

3x3 stride-1 layers with >= 32 input and output channels run by the exact int8 Winograd
(kernels/qwinograd.h); their bytes are checked against the runtime's own integer requantisation
(_exact_requantise), which the im2col path writes too."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from graph_runner import run_device, run_ort
from onnx import TensorProto, helper, numpy_helper
from sdk_host import SdkBuild

CASES = {  # name: (C, H, W, M, kernel, stride, pad, dilation, per_channel, bias)
    "3x3-pad1": (8, 12, 12, 16, 3, 1, 1, 1, True, True),
    "3x3-stride2": (5, 13, 11, 7, 3, 2, 1, 1, True, False),
    "1x1": (32, 7, 7, 24, 1, 1, 0, 1, False, True),
    "7x7-stride2-pad3": (3, 32, 32, 16, 7, 2, 3, 1, True, True),
    "3x3-dilation2": (4, 10, 10, 6, 3, 1, 2, 2, False, True),
    "1x1-odd-tails": (37, 5, 9, 13, 1, 1, 0, 1, True, True),  # k, channels and pixels off 4/16
    # im2col bands of one output row (k * ow above the op's 256 KiB band), 120 / 75 pixels each
    "3x3-banded": (256, 6, 120, 5, 3, 1, 1, 1, True, True),
    "3x3-stride2-banded": (240, 9, 150, 6, 3, 2, 1, 1, False, True),
    # im2col from the input plane itself (no padding; the last channel through the padded copy)
    "1x1-stride2": (20, 13, 15, 12, 1, 2, 0, 1, True, True),
    "3x3-valid": (6, 11, 19, 9, 3, 1, 0, 1, False, True),
    # ResNet-18's layer4 and layer3 shapes, smaller: last panels of 1 and 4 columns (49 and 196
    # pixels) that the AVX-512 VNNI GEMM runs from expanded columns
    "3x3-7x7-deep": (64, 7, 7, 20, 3, 1, 1, 1, True, True),
    "3x3-14x14-deep": (40, 14, 14, 12, 3, 1, 1, 1, True, False),
    # stride 2 with >= 5 taps per row: padded rows split into even and odd columns
    "5x5-stride2-odd": (4, 15, 21, 6, 5, 2, 2, 1, True, True),
    "5x5-stride2-dilation2": (3, 19, 23, 5, 5, 2, 3, 2, False, True),
    "7x7-stride2-banded": (16, 20, 200, 8, 7, 2, 3, 1, True, True),
}
# Depthwise (group = channels, kernels/qdepthwise.h): same fields, C == M.
DEPTHWISE = {
    "dw-3x3-pad1": (24, 13, 11, 24, 3, 1, 1, 1, True, True),
    "dw-3x3-stride2": (16, 14, 15, 16, 3, 2, 1, 1, True, False),
    "dw-5x5-pad2": (8, 9, 12, 8, 5, 1, 2, 1, False, True),
    "dw-3x3-dilation2-stride3": (5, 17, 16, 5, 3, 3, 2, 2, True, True),
}


def _model(c: int, h: int, w: int, m: int, k: int, s: int, p: int, d: int, per_channel: bool,
           bias: bool, rng: np.random.Generator,
           group: int = 1) -> tuple[Any, dict[str, np.ndarray]]:
    weights = rng.integers(-127, 128, (m, c // group, k, k), dtype=np.int8)
    w_scale = (rng.random(m if per_channel else 1) * 0.02 + 0.001).astype(np.float32)
    inits = [
        numpy_helper.from_array(np.array(0.02, np.float32), "x_scale"),
        numpy_helper.from_array(np.array(117, np.uint8), "x_zero"),
        numpy_helper.from_array(weights, "w"),
        numpy_helper.from_array(w_scale, "w_scale"),
        numpy_helper.from_array(np.zeros(w_scale.shape, np.int8), "w_zero"),
        numpy_helper.from_array(np.array(0.5, np.float32), "y_scale"),
        numpy_helper.from_array(np.array(128, np.uint8), "y_zero"),
    ]
    inputs = ["x", "x_scale", "x_zero", "w", "w_scale", "w_zero", "y_scale", "y_zero"]
    if bias:
        inits.append(numpy_helper.from_array(
            rng.integers(-20000, 20000, m, dtype=np.int32), "b"))
        inputs.append("b")
    oh = (h + 2 * p - d * (k - 1) - 1) // s + 1
    ow = (w + 2 * p - d * (k - 1) - 1) // s + 1
    node = helper.make_node("QLinearConv", inputs, ["y"], name="qconv", kernel_shape=[k, k],
                            strides=[s, s], pads=[p] * 4, dilations=[d, d], group=group)
    graph = helper.make_graph(
        [node], "qconv", [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, c, h, w])],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, [1, m, oh, ow])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model, {"x": rng.integers(0, 256, (1, c, h, w), dtype=np.uint8)}


def _reference(model: Any, x: np.ndarray, k: int, s: int, p: int, d: int) -> np.ndarray:
    init = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    xi = np.pad(x[0].astype(np.int64) - int(init["x_zero"]), ((0, 0), (p, p), (p, p)))
    w = init["w"].astype(np.int64)
    _, hp, wp = xi.shape
    oh, ow = (hp - d * (k - 1) - 1) // s + 1, (wp - d * (k - 1) - 1) // s + 1
    acc = np.zeros((w.shape[0], oh, ow), np.int64)
    for ky in range(k):
        for kx in range(k):
            y0, x0 = ky * d, kx * d
            patch = xi[:, y0: y0 + s * (oh - 1) + 1: s, x0: x0 + s * (ow - 1) + 1: s]
            if w.shape[1] == 1 and w.shape[0] == xi.shape[0] > 1:  # depthwise
                acc += w[:, 0, ky, kx][:, None, None] * patch
            else:
                acc += np.einsum("mc,chw->mhw", w[:, :, ky, kx], patch)
    if "b" in init:
        acc += init["b"].astype(np.int64)[:, None, None]
    scale = float(init["x_scale"]) * init["w_scale"].astype(np.float64) / float(init["y_scale"])
    scale = np.broadcast_to(scale, (w.shape[0],))[:, None, None]
    y = np.round(acc * scale) + int(init["y_zero"])
    return np.clip(y, 0, 255).astype(np.uint8)[None]


def _check_against_reference(sdk_host: SdkBuild, case: str, fields: tuple[Any, ...],
                             group: int) -> tuple[Any, dict[str, np.ndarray], np.ndarray]:
    """Runs the case on the device; within 1 step of the exact reference, equal on >= 99%."""
    c, h, w, m, k, s, p, d, per_channel, bias = fields
    model, feeds = _model(c, h, w, m, k, s, p, d, per_channel, bias,
                          rng=np.random.default_rng(len(case)), group=group)
    got = run_device(sdk_host.build, model, feeds)["y"]
    want = _reference(model, feeds["x"], k, s, p, d)
    assert got.dtype == np.uint8 and got.shape == want.shape
    diff = np.abs(got.astype(np.int32) - want.astype(np.int32))
    assert diff.max() <= 1, case
    assert (diff == 0).mean() >= 0.99, case
    assert len(np.unique(want)) > 10  # the case exercises the range, not a clamped constant
    return model, feeds, want


@pytest.mark.parametrize("case", list(CASES))
def test_qlinear_conv_matches_exact_integer_reference(sdk_host: SdkBuild, case: str) -> None:
    _check_against_reference(sdk_host, case, CASES[case], 1)


# The depthwise kernel per instruction set (kernels/qdepthwise.cpp): "best" is AVX-512 VNNI
# (vpdpwssd) where the CPU has it, "avx2" the vpmaddwd loop, "generic" the portable one.
@pytest.mark.parametrize("isa", ["best", "avx2", "generic"])
@pytest.mark.parametrize("case", list(DEPTHWISE))
def test_depthwise_qlinear_conv_matches_exact_integer_reference(
        sdk_host: SdkBuild, case: str, isa: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGEPACK_CPU_ISA", raising=False)
    if isa != "best":
        monkeypatch.setenv("EDGEPACK_CPU_ISA", isa)
    _check_against_reference(sdk_host, case, DEPTHWISE[case], DEPTHWISE[case][0])


# 3x3 stride-1 convolutions with >= 32 input and output channels run by the exact int8 Winograd
# F(2x2, 3x3) (kernels/qwinograd.h); the others by im2col + qgemm. Both must write the same bytes:
# the exact integer sum requantised by the runtime's fixed-point multiplier (_exact_requantise).
# name: (C, H, W, M, pads t l b r, weights, x zero point, y zero point, per_channel, bias)
WINOGRAD = {
    "odd-hw": (32, 9, 11, 32, (1, 1, 1, 1), "full", 128, 128, True, True),
    "odd-c-m": (33, 8, 7, 37, (1, 1, 1, 1), "full", 0, 3, True, True),
    "pad0": (35, 12, 10, 40, (0, 0, 0, 0), "7bit", 255, 128, False, True),
    "pads-asymmetric": (40, 10, 13, 34, (0, 1, 1, 0), "full", 117, 250, True, False),
    "per-tensor": (64, 15, 13, 70, (1, 1, 1, 1), "7bit", 0, 128, False, False),
    "two-bands": (37, 30, 29, 45, (1, 1, 1, 1), "full", 255, 0, True, True),
    "deep-c": (130, 6, 7, 34, (1, 1, 1, 1), "extreme", 128, 128, True, True),
    "tiny": (48, 3, 3, 33, (1, 1, 1, 1), "7bit", 128, 77, True, True),
    "im2col-c31": (31, 9, 9, 40, (1, 1, 1, 1), "full", 128, 128, True, True),  # below the gate
}


def _winograd_model(c: int, h: int, w: int, m: int, pads: tuple[int, int, int, int], weights: str,
                    x_zero: int, y_zero: int, per_channel: bool, bias: bool,
                    rng: np.random.Generator) -> tuple[Any, dict[str, np.ndarray]]:
    if weights == "extreme":  # the largest |U| and |V|: +-127 / -128 against inputs 0 / 255
        wq = rng.choice(np.array([-128, 127], np.int8), (m, c, 3, 3))
        x = rng.choice(np.array([0, 255], np.uint8), (1, c, h, w))
    else:
        top = 127 if weights == "full" else 64
        wq = rng.integers(-top, top + 1, (m, c, 3, 3), dtype=np.int8)
        x = rng.integers(0, 256, (1, c, h, w), dtype=np.uint8)
    w_scale = (rng.random(m if per_channel else 1) * 0.002 + 0.0002).astype(np.float32)
    inits = [
        numpy_helper.from_array(np.array(0.02, np.float32), "x_scale"),
        numpy_helper.from_array(np.array(x_zero, np.uint8), "x_zero"),
        numpy_helper.from_array(wq, "w"),
        numpy_helper.from_array(w_scale, "w_scale"),
        numpy_helper.from_array(np.zeros(w_scale.shape, np.int8), "w_zero"),
        numpy_helper.from_array(np.array(0.5, np.float32), "y_scale"),
        numpy_helper.from_array(np.array(y_zero, np.uint8), "y_zero"),
    ]
    inputs = ["x", "x_scale", "x_zero", "w", "w_scale", "w_zero", "y_scale", "y_zero"]
    if bias:
        inits.append(numpy_helper.from_array(rng.integers(-20000, 20000, m, dtype=np.int32), "b"))
        inputs.append("b")
    oh, ow = h + pads[0] + pads[2] - 2, w + pads[1] + pads[3] - 2
    node = helper.make_node("QLinearConv", inputs, ["y"], name="qconv", kernel_shape=[3, 3],
                            pads=[pads[0], pads[1], pads[2], pads[3]])
    graph = helper.make_graph(
        [node], "qconv", [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, c, h, w])],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, [1, m, oh, ow])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model, {"x": x}


def _exact_requantise(acc: np.ndarray, real: np.ndarray, y_zero: int) -> np.ndarray:
    """The runtime's requantisation (kernels/qgemm.h quant_multiplier + apply_multiplier) of int64
    sums acc[m, ...] by real[m]: m0 = round(q * 2^31) for real = q * 2^shift, then
    round-half-away(acc * m0 / 2^(31 - shift)) in integers, + y_zero, clamped."""
    out = np.empty(acc.shape, np.int64)
    for j, r in enumerate(real):
        q, shift = math.frexp(float(r))
        m0 = math.floor(q * 2.0**31 + 0.5)
        if m0 == 2**31:
            m0, shift = m0 // 2, shift + 1
        total = min(62, max(1, 31 - shift))
        ab = acc[j].astype(np.int64) * m0
        rounded = (np.abs(ab) + (1 << (total - 1))) >> total
        out[j] = np.where(ab < 0, -rounded, rounded)
    return np.clip(out + y_zero, 0, 255).astype(np.uint8)


def _winograd_reference(model: Any, x: np.ndarray, pads: tuple[int, int, int, int]) -> np.ndarray:
    init = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    xi = np.pad(x[0].astype(np.int64) - int(init["x_zero"]),
                ((0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    w = init["w"].astype(np.int64)
    oh, ow = xi.shape[1] - 2, xi.shape[2] - 2
    acc = np.zeros((w.shape[0], oh, ow), np.int64)
    for ky in range(3):
        for kx in range(3):
            acc += np.einsum("mc,chw->mhw", w[:, :, ky, kx], xi[:, ky: ky + oh, kx: kx + ow])
    if "b" in init:
        acc += init["b"].astype(np.int64)[:, None, None]
    # As the runtime: float32 scales widened to double, x_scale * w_scale / y_scale.
    real = (np.float64(init["x_scale"]) * init["w_scale"].astype(np.float64)
            / np.float64(init["y_scale"]))
    real = np.broadcast_to(real, (w.shape[0],))
    return _exact_requantise(acc, real, int(init["y_zero"]))[None]


# The Winograd runs where the int8 GEMM's kernel is AVX2 or NEON (use_winograd() in
# ops/qlinear_conv.cpp): "avx2" caps the GEMM there (EDGEPACK_CPU_ISA) also on a CPU with AVX-512
# VNNI, where "best" is the im2col path; "generic" is the im2col path with the portable loops.
@pytest.mark.parametrize("isa", ["best", "avx2", "generic"])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("case", list(WINOGRAD))
def test_3x3_convolution_bytes_equal_the_exact_integer_result(
        sdk_host: SdkBuild, case: str, threads: int, isa: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    c, h, w, m, pads, weights, x_zero, y_zero, per_channel, bias = WINOGRAD[case]
    monkeypatch.delenv("EDGEPACK_CPU_ISA", raising=False)
    if isa != "best":
        monkeypatch.setenv("EDGEPACK_CPU_ISA", isa)
    model, feeds = _winograd_model(c, h, w, m, pads, weights, x_zero, y_zero, per_channel, bias,
                                   np.random.default_rng(len(case)))
    got = run_device(sdk_host.build, model, feeds, threads=threads)["y"]
    want = _winograd_reference(model, feeds["x"], pads)
    assert got.shape == want.shape
    bad = np.argwhere(got != want)
    assert bad.size == 0, f"{len(bad)} bytes differ, first at {bad[0]}: {got[tuple(bad[0])]} " \
                          f"want {want[tuple(bad[0])]}"
    assert len(np.unique(want)) > 10  # the case exercises the range, not a clamped constant
    if weights == "7bit":  # onnxruntime is exact on 7-bit weights (see the module docstring)
        ort_diff = np.abs(run_ort(model, feeds)["y"].astype(np.int32) - want.astype(np.int32))
        assert ort_diff.max() <= 1, case

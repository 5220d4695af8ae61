# SPDX-License-Identifier: Apache-2.0
"""FramePreprocess and FrameRoiAlign (lower/frame_fusion.py, runtime ops/frame_ops.cpp): the
pre-processing and crop graphs that edgepack.model.prepost builds, for each channel order, luma,
resize mode, letterbox and layout, lowered into the one fused op and run by the CPU runtime
(1 and 3 threads), against onnxruntime running the unfused ONNX graph: on the host's own vector
paths and capped (EDGEPACK_CPU_ISA) to AVX2 and to the portable ones, each ISA's code in the op. A
chain that is not the frame pattern (a bounded frame's run-time geometry) is left to the plain
ops."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import onnx
import pytest
from graph_runner import run_device, run_ort
from sdk_host import SdkBuild

from edgepack.lower import device_graph as dg
from edgepack.lower.lowering import lower
from edgepack.model.prepost import build_crop, build_preprocess
from edgepack.model.tensors import TensorDesc
from edgepack.spec.project import PreprocessSpec

Array = np.ndarray[Any, Any]


def _run(sdk: SdkBuild, model: onnx.ModelProto, feeds: dict[str, Array], threads: int,
         bounds: dict[str, int] | None = None) -> tuple[list[str], Array]:
    """(the lowered graph's op types, its one output) from edgepack-graph-run."""
    ops = [n.op_type for n in dg.parse(lower(model, bounds)).nodes]
    return ops, run_device(sdk.build, model, feeds, threads, bounds=bounds)["output"]


PRE_CASES = [
    # source (h, w), model (h, w), pixel_format, model_format, resize, interpolation, layout
    ((48, 64), (32, 32), "bgr", "rgb", "letterbox", "linear", "nchw"),  # the example's detector
    ((48, 64), (24, 24), "bgr", "rgb", "stretch", "linear", "nchw"),  # its classifier
    ((37, 23), (20, 20), "rgb", "bgr", "letterbox", "nearest", "nhwc"),  # odd sizes, side pads
    ((12, 20), (24, 32), "gray", "rgb", "stretch", "nearest", "nchw"),  # upscale, gray -> colour
    ((30, 40), (16, 16), "rgb", "gray", "letterbox", "linear", "nhwc"),  # luma
    ((16, 16), (16, 16), "rgb", "rgb", "stretch", "linear", "nchw"),  # no resize at all
    # four output pixels at a time, then the rest: widths 22 and 30 leave a tail of 2
    ((30, 50), (18, 22), "gray", "rgb", "stretch", "linear", "nchw"),  # one-channel pixels
    ((64, 48), (30, 30), "bgr", "bgr", "letterbox", "linear", "nchw"),  # 22 wide, side pads
]


@pytest.mark.parametrize("case", PRE_CASES, ids=lambda c: "-".join(map(str, c[2:])))
def test_preprocess_is_one_fused_op_matching_onnxruntime(sdk_host: SdkBuild, isa: str,
                                                         case: tuple[Any, ...]) -> None:
    (sh, sw), (h, w), pix, fmt, resize, interp, layout = case
    c = 1 if fmt == "gray" else 3
    pre = PreprocessSpec(source_size=(sh, sw), pixel_format=pix, model_format=fmt,
                         resize=resize, interpolation=interp, pad_value=114.0,
                         mean=(10.0, 20.0, 30.0)[:c], std=(50.0, 60.0, 70.0)[:c], layout=layout)
    shape = (1, c, h, w) if layout == "nchw" else (1, h, w, c)
    model = build_preprocess(pre, TensorDesc("input", "float32", shape))
    rng = np.random.default_rng(sum(map(ord, str(case))))
    img = rng.integers(0, 256, (sh, sw, 1 if pix == "gray" else 3), dtype=np.uint8)
    want = run_ort(model, {"image": img})["output"]
    for threads in (1, 3):
        ops, got = _run(sdk_host, model, {"image": img}, threads)
        assert ops == ["FramePreprocess"], ops
        assert got.shape == want.shape == shape
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5,
                                   err_msg=f"threads {threads}, {isa}")


def test_bounded_frame_keeps_the_plain_ops(sdk_host: SdkBuild) -> None:
    """Run-time frame sizes compute the geometry in the graph: not the fused pattern."""
    pre = PreprocessSpec(source_size=(24, 32), source_size_min=(12, 16),
                         source_size_max=(48, 64), pixel_format="bgr", model_format="rgb",
                         resize="letterbox", pad_value=114.0, std=(255.0,))
    model = build_preprocess(pre, TensorDesc("input", "float32", (1, 3, 16, 16)))
    img = np.random.default_rng(3).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    feeds: dict[str, Array] = {"image": img, "image_size": np.array([30, 40], np.int64)}
    want = run_ort(model, feeds)["output"]
    ops, got = _run(sdk_host, model, feeds, 1)
    assert "FramePreprocess" not in ops and "Gather" in ops, ops
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


# output (h, w): a width of 10 is one block of eight bins (the AVX2 path) and two more; 37 is
# four blocks, one four-bin step and one bin (the boxes' bins read different numbers of pixels)
@pytest.mark.parametrize("size", [(12, 10), (9, 37)], ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize(("pix", "fmt", "layout"), [("bgr", "rgb", "nchw"),
                                                    ("rgb", "gray", "nhwc")])
def test_crop_is_one_fused_roi_align_matching_onnxruntime(
        sdk_host: SdkBuild, isa: str, pix: Literal["rgb", "bgr"], fmt: Literal["rgb", "gray"],
        layout: Literal["nchw", "nhwc"], size: tuple[int, int]) -> None:
    c = 1 if fmt == "gray" else 3
    pre = PreprocessSpec(source_size=(40, 60), pixel_format=pix, model_format=fmt,
                         mean=(100.0, 110.0, 120.0)[:c], std=(50.0, 55.0, 60.0)[:c],
                         layout=layout)
    h, w = size
    shape = (1, c, h, w) if layout == "nchw" else (1, h, w, c)
    model = build_crop(pre, TensorDesc("input", "float32", shape))
    img = np.random.default_rng(11).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    boxes = np.array([[2.0, 3.0, 37.5, 22.0],  # inside
                      [40.0, 20.0, 60.0, 40.0],  # touching the far corner
                      [-3.0, -2.0, 8.0, 6.0],  # partly outside
                      [5.0, 5.0, 5.5, 5.5],  # tiny
                      [-30.0, -30.0, -10.0, -12.0]], np.float32)  # wholly outside: zeros
    feeds: dict[str, Array] = {"image": img, "boxes": boxes}
    want = run_ort(model, feeds)["output"]
    for threads in (1, 3):
        ops, got = _run(sdk_host, model, feeds, threads, {"boxes": 8})
        assert "FrameRoiAlign" in ops and not {"RoiAlign", "Div"} & set(ops), ops
        assert got.shape == want.shape == (len(boxes), *shape[1:])
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5,
                                   err_msg=f"threads {threads}, {isa}")

# SPDX-License-Identifier: Apache-2.0
"""Geometry for a camera frame whose size the app chooses per run (``source_size_min`` ..
``source_size_max`` in ``[models.inputs.preprocess]``).

The stage graphs keep static shapes: the frame arrives in an ``image`` buffer of the largest
size, top-left aligned (``place_frame``: what the runtime does when it feeds a bounded pipeline
input to a stage), and its actual ``[height, width]`` comes as the int64 input ``image_size``.
The letterbox / stretch geometry is computed *inside* the graphs from ``image_size`` by
``geometry_tensors``, the one formula the preprocess (resize + pad) and the detection post (boxes
and keypoints back to source pixels) share, so onnxruntime on the host and the device runtime run
the same arithmetic. It matches ``prepost.geometry`` (YOLOv5 letterbox) for every size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from onnx import TensorProto

from edgepack.model.graph_builder import GraphBuilder
from edgepack.spec.project import PreprocessSpec

SIZE_INPUT = "image_size"  # int64 [2]: the frame's actual (height, width)
SIZE_SUFFIX = "#size"  # tensor reference "<pipeline input>#size" (docs/manifest.md)


@dataclass(frozen=True)
class GeometryTensors:
    """Names of float32 [2] tensors in (y, x) order: source size, resized size, leading
    padding (top, left) and scale (resized / source)."""

    src: str
    new: str
    lead: str
    scale: str


def geometry_tensors(g: GraphBuilder, pre: PreprocessSpec, dst_h: int,
                     dst_w: int) -> GeometryTensors:
    """``prepost.geometry`` as graph nodes over the ``image_size`` input."""
    src = g.op1("Cast", [SIZE_INPUT], to=TensorProto.FLOAT)
    dst = g.const("dst", np.array([dst_h, dst_w], np.float32))
    if pre.resize == "stretch":
        lead = g.const("lead", np.zeros(2, np.float32))
        return GeometryTensors(src, dst, lead, g.op1("Div", [dst, src]))
    # r = min(dst_h / src_h, dst_w / src_w); new = round(src * r); the odd pixel of padding goes
    # after (round(d - 0.1) before): Round is half-to-even like Python's round().
    ratio = g.op1("ReduceMin", [g.op1("Div", [dst, src])], keepdims=1)
    new = g.op1("Round", [g.op1("Mul", [src, ratio])])
    half = g.op1("Mul", [g.op1("Sub", [dst, new]), g.const("half", np.array(0.5, np.float32))])
    lead = g.op1("Round", [g.op1("Sub", [half, g.const("tenth", np.array(0.1, np.float32))])])
    return GeometryTensors(src, new, lead, g.op1("Div", [new, src]))


def pick(g: GraphBuilder, vec: str, order: list[int]) -> str:
    """Elements of a [2] (y, x) vector in ``order`` (e.g. [1, 0, 1, 0] for x1, y1, x2, y2)."""
    return g.op1("Gather", [vec, g.const("order", np.array(order, np.int64))], axis=0)


def _axis_taps(g: GraphBuilder, geo: GeometryTensors, axis: int, count: int,
               interpolation: str) -> tuple[str, str | None, str]:
    """Source indices, weights and inside-mask for one axis of the model input.

    Returns (int64 indices: [2 * count] low then high taps for linear, [count] for nearest;
    float32 weights of the high taps [count] or None; float32 [count] 1 inside the resized
    image, 0 in the padding). Same coordinates as ONNX Resize: linear half_pixel (clamped to the
    image), nearest asymmetric + floor (cv2 INTER_NEAREST)."""
    lead, new, scale, src = (pick(g, t, [axis]) for t in (geo.lead, geo.new, geo.scale, geo.src))
    rel = g.op1("Sub", [g.const("pos", np.arange(count, dtype=np.float32)), lead])
    zero = g.const("zero", np.array(0.0, np.float32))
    one = g.const("one", np.array(1.0, np.float32))
    inside = g.op1("Cast", [g.op1("And", [g.op1("GreaterOrEqual", [rel, zero]),
                                          g.op1("Less", [rel, new])])], to=TensorProto.FLOAT)
    last = g.op1("Sub", [src, one])
    if interpolation == "nearest":
        c = g.op1("Floor", [g.op1("Div", [rel, scale])])
        c = g.op1("Min", [g.op1("Max", [c, zero]), last])
        return g.op1("Cast", [c], to=TensorProto.INT64), None, inside
    half = g.const("half", np.array(0.5, np.float32))
    c = g.op1("Sub", [g.op1("Div", [g.op1("Add", [rel, half]), scale]), half])
    c = g.op1("Min", [g.op1("Max", [c, zero]), last])
    low = g.op1("Floor", [c])
    high = g.op1("Min", [g.op1("Add", [low, one]), last])
    weight = g.op1("Sub", [c, low])
    taps = g.op1("Concat", [low, high], axis=0)
    return g.op1("Cast", [taps], to=TensorProto.INT64), weight, inside


def resize_and_pad(g: GraphBuilder, pre: PreprocessSpec, dst_h: int, dst_w: int) -> str:
    """uint8 ``image`` [H_max, W_max, C] (the frame top-left, ``image_size`` its size) ->
    float32 [dst_h, dst_w, C]: resized like ONNX Resize and letterbox-padded with pad_value,
    still in the app's channel order."""
    geo = geometry_tensors(g, pre, dst_h, dst_w)
    ty, wy, in_y = _axis_taps(g, geo, 0, dst_h, pre.interpolation)
    tx, wx, in_x = _axis_taps(g, geo, 1, dst_w, pre.interpolation)
    rows = g.op1("Gather", ["image", ty], axis=0)  # uint8: only the rows the taps read
    x = g.op1("Cast", [g.op1("Gather", [rows, tx], axis=1)], to=TensorProto.FLOAT)
    if wy is not None and wx is not None:
        x = _blend(g, x, wy, wx, dst_h, dst_w, 1 if pre.pixel_format == "gray" else 3)
    if pre.resize == "letterbox":
        mask = g.op1("Mul", [
            g.op1("Reshape", [in_y, g.const("shape", np.array([dst_h, 1, 1], np.int64))]),
            g.op1("Reshape", [in_x, g.const("shape", np.array([1, dst_w, 1], np.int64))])])
        pad = g.const("pad_value", np.array(pre.pad_value, np.float32))
        x = g.op1("Add", [g.op1("Mul", [g.op1("Sub", [x, pad]), mask]), pad])
    return x


def _blend(g: GraphBuilder, x: str, wy: str, wx: str, dst_h: int, dst_w: int,
           c: int) -> str:
    """float [2 * dst_h, 2 * dst_w, C] (low then high taps along each axis) -> the bilinear
    blend [dst_h, dst_w, C]. Every product runs over long contiguous rows (weights broadcast
    along whole rows or repeated per channel): the runtime's vectorised path."""
    def shape(*dims: int) -> str:
        return g.const("shape", np.array(dims, np.int64))

    one = g.const("one", np.array(1.0, np.float32))
    pair_y = g.op1("Concat", [g.op1("Sub", [one, wy]), wy], axis=0)  # [2 * dst_h]
    x = g.op1("Mul", [g.op1("Reshape", [x, shape(2 * dst_h, 2 * dst_w * c)]),
                      g.op1("Reshape", [pair_y, shape(2 * dst_h, 1)])])
    low, high = g.op("Split", [x, g.const("split", np.array([dst_h, dst_h], np.int64))], 2,
                     axis=0)
    pair_x = g.op1("Concat", [g.op1("Sub", [one, wx]), wx], axis=0)  # [2 * dst_w]
    per_channel = g.op1("Mul", [g.op1("Reshape", [pair_x, shape(2 * dst_w, 1)]),
                                g.const("ones", np.ones((1, c), np.float32))])
    x = g.op1("Mul", [g.op1("Add", [low, high]),
                      g.op1("Reshape", [per_channel, shape(1, 2 * dst_w * c)])])
    left, right = g.op("Split", [g.op1("Reshape", [x, shape(dst_h, 2, dst_w * c)]),
                                 g.const("split", np.array([1, 1], np.int64))], 2, axis=1)
    return g.op1("Reshape", [g.op1("Add", [left, right]), shape(dst_h, dst_w, c)])


def place_frame(frame: np.ndarray, size_max: tuple[int, int]) -> np.ndarray:
    """The stage-input buffer [H_max, W_max, C] for an HWC ``frame``: the frame top-left, its
    last row and column repeated once past its edge (so a RoiAlign crop that touches the frame's
    border reads the border, as on a buffer of the frame's own size), zeros elsewhere. The
    runtime's feed of a bounded input does the same (pipeline.cpp ``place_frame``)."""
    h, w = frame.shape[:2]
    out = np.zeros((size_max[0], size_max[1], *frame.shape[2:]), frame.dtype)
    out[:h, :w] = frame
    if w < size_max[1]:
        out[:h, w] = frame[:, w - 1]
    if h < size_max[0]:
        out[h, :min(w + 1, size_max[1])] = out[h - 1, :min(w + 1, size_max[1])]
    return out

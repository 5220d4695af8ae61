# SPDX-License-Identifier: Apache-2.0
"""Pre/post-processing as opset-17 ONNX graphs built from the spec records.

Everything here uses only the ops the edgepack runtime implements, so the same graphs run on the
device, under onnxruntime and under ``onnx.reference``. Geometry (stretch / letterbox) is decided
here once and shared by the preprocess graph and by the detection post that maps boxes back to
source-image coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper

from edgepack.errors import ModelError
from edgepack.model.frame_size import (
    SIZE_INPUT,
    GeometryTensors,
    geometry_tensors,
    pick,
    resize_and_pad,
)
from edgepack.model.graph_builder import IR_VERSION, OPSET, GraphBuilder
from edgepack.model.tensors import DTYPE_TO_ONNX, TensorDesc
from edgepack.spec.project import ClassificationPost, DetectionPost, PixelFormat, PreprocessSpec

# ITU-R BT.601 luma weights (what cv2.cvtColor uses for RGB -> GRAY).
_LUMA_RGB = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class Geometry:
    """How a source image of (src_h, src_w) lands in the model's (dst_h, dst_w) input:
    resized to (new_h, new_w), then padded by top/left/bottom/right."""

    src_h: int
    src_w: int
    dst_h: int
    dst_w: int
    new_h: int
    new_w: int
    top: int
    left: int
    bottom: int
    right: int

    @property
    def scale_x(self) -> float:
        return self.new_w / self.src_w

    @property
    def scale_y(self) -> float:
        return self.new_h / self.src_h


def geometry(pre: PreprocessSpec, dst_h: int, dst_w: int) -> Geometry:
    src_h, src_w = pre.source_size
    if pre.resize == "stretch":
        return Geometry(src_h, src_w, dst_h, dst_w, dst_h, dst_w, 0, 0, 0, 0)
    # YOLOv5 letterbox (auto=False, scaleup=True): keep aspect, centre, split odd padding
    # the same way (round(d - 0.1) before, round(d + 0.1) after).
    r = min(dst_h / src_h, dst_w / src_w)
    new_w, new_h = round(src_w * r), round(src_h * r)
    dw, dh = (dst_w - new_w) / 2, (dst_h - new_h) / 2
    top, bottom = round(dh - 0.1), round(dh + 0.1)
    left, right = round(dw - 0.1), round(dw + 0.1)
    return Geometry(src_h, src_w, dst_h, dst_w, new_h, new_w, top, left, bottom, right)


def channels(fmt: PixelFormat) -> int:
    return 1 if fmt == "gray" else 3


def model_hw(pre: PreprocessSpec, desc: TensorDesc) -> tuple[int, int, int]:
    """(channels, height, width) of a model image input, checked against the spec."""
    if len(desc.shape) != 4 or desc.shape[0] != 1:
        raise ModelError(f"input {desc.name!r}: preprocessing needs a [1, C, H, W] or "
                         f"[1, H, W, C] input, the model has {list(desc.shape)}")
    if pre.layout == "nchw":
        c, h, w = desc.shape[1], desc.shape[2], desc.shape[3]
    else:
        h, w, c = desc.shape[1], desc.shape[2], desc.shape[3]
    if c != channels(pre.model_format):
        raise ModelError(f"input {desc.name!r}: {c} channels in {pre.layout} layout, but "
                         f"model_format {pre.model_format!r} has {channels(pre.model_format)}")
    return c, h, w


def _per_channel(values: tuple[float, ...], c: int, what: str) -> np.ndarray:
    if len(values) == c:
        arr = np.array(values, np.float32)
    elif len(values) == 1:
        arr = np.full(c, values[0], np.float32)
    else:
        raise ModelError(f"preprocess {what} has {len(values)} values for {c} channels")
    return arr.reshape(1, c, 1, 1)


def _model(g: GraphBuilder, name: str, inputs: list[onnx.ValueInfoProto],
           outputs: list[onnx.ValueInfoProto]) -> onnx.ModelProto:
    graph = helper.make_graph(g.nodes, name, inputs, outputs, g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="edgepack", ir_version=IR_VERSION)
    onnx.checker.check_model(model, full_check=True)
    return model


def _image_to_nchw(g: GraphBuilder, pre: PreprocessSpec) -> str:
    """uint8 [H, W, C] in the app's format -> float [1, C', H, W] in the model's format."""
    return _hwc_to_nchw(g, g.op1("Cast", ["image"], to=TensorProto.FLOAT), pre)


def _hwc_to_nchw(g: GraphBuilder, x: str, pre: PreprocessSpec) -> str:
    """float [H, W, C] in the app's format -> float [1, C', H, W] in the model's format."""
    src, dst = pre.pixel_format, pre.model_format
    if src != dst:
        if dst == "gray":
            weights = _LUMA_RGB if src == "rgb" else _LUMA_RGB[::-1]
            x = g.op1("MatMul", [x, g.const("luma", np.array(weights, np.float32).reshape(3, 1))])
        else:  # rgb <-> bgr swaps, gray -> colour repeats the one channel
            order = [0, 0, 0] if src == "gray" else [2, 1, 0]
            x = g.op1("Gather", [x, g.const("order", np.array(order, np.int64))], axis=2)
    x = g.op1("Unsqueeze", [x, g.const("axes", np.array([0], np.int64))])
    return g.op1("Transpose", [x], perm=[0, 3, 1, 2])


def _normalise(g: GraphBuilder, x: str, pre: PreprocessSpec, c: int) -> str:
    mean, std = _per_channel(pre.mean, c, "mean"), _per_channel(pre.std, c, "std")
    if np.any(mean != 0):
        x = g.op1("Sub", [x, g.const("mean", mean)])
    if np.any(std != 1):
        x = g.op1("Div", [x, g.const("std", std)])
    return x


def _resize(g: GraphBuilder, x: str, c: int, h: int, w: int, interpolation: str) -> str:
    attrs: dict[str, str] = (
        {"mode": "linear", "coordinate_transformation_mode": "half_pixel"}
        if interpolation == "linear"
        # cv2 INTER_NEAREST: src = floor(dst * scale)
        else {"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
              "nearest_mode": "floor"}
    )
    sizes = g.const("sizes", np.array([1, c, h, w], np.int64))
    return g.op1("Resize", [x, "", "", sizes], **attrs)


def _image_input(pre: PreprocessSpec) -> onnx.ValueInfoProto:
    """``image`` uint8 [H, W, C]: the source size, or the largest with run-time bounds."""
    h, w = pre.source_size_max or pre.source_size
    return helper.make_tensor_value_info("image", TensorProto.UINT8,
                                         [h, w, channels(pre.pixel_format)])


def _size_input() -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(SIZE_INPUT, TensorProto.INT64, [2])


def build_preprocess(pre: PreprocessSpec, input: TensorDesc) -> onnx.ModelProto:
    """``image`` uint8 [H, W, C] -> ``output`` with the model input's shape and layout."""
    c, h, w = model_hw(pre, input)
    g = GraphBuilder(0)
    if pre.bounded:  # geometry from the image_size input (frame_size.py)
        x = _normalise(g, _hwc_to_nchw(g, resize_and_pad(g, pre, h, w), pre), pre, c)
        return _preprocess_model(g, pre, input, x)
    geo = geometry(pre, h, w)
    x = _image_to_nchw(g, pre)
    if (geo.new_h, geo.new_w) != (geo.src_h, geo.src_w):
        x = _resize(g, x, c, geo.new_h, geo.new_w, pre.interpolation)
    if geo.top or geo.left or geo.bottom or geo.right:
        pads = np.array([0, 0, geo.top, geo.left, 0, 0, geo.bottom, geo.right], np.int64)
        fill = g.const("pad_value", np.array(pre.pad_value, np.float32))
        x = g.op1("Pad", [x, g.const("pads", pads), fill], mode="constant")
    return _preprocess_model(g, pre, input, _normalise(g, x, pre, c))


def _preprocess_model(g: GraphBuilder, pre: PreprocessSpec, input: TensorDesc,
                      x: str) -> onnx.ModelProto:
    if pre.layout == "nhwc":
        x = g.op1("Transpose", [x], perm=[0, 2, 3, 1], out="output")
    else:
        x = g.op1("Identity", [x], out="output")
    out = helper.make_tensor_value_info("output", TensorProto.FLOAT, list(input.shape))
    inputs = [_image_input(pre), *([_size_input()] if pre.bounded else [])]
    return _model(g, "preprocess", inputs, [out])


def build_classification_post(post: ClassificationPost, logits: TensorDesc) -> onnx.ModelProto:
    """logits [1, classes] -> optional Softmax -> TopK: ``scores`` [1, k], ``indices`` [1, k]."""
    if len(logits.shape) != 2 or logits.shape[0] != 1:
        raise ModelError(f"classification output {logits.name!r} must be [1, classes], the "
                         f"model gives {list(logits.shape)}")
    k = min(post.top_k, logits.shape[1])
    g = GraphBuilder(0)
    x = logits.name
    if post.softmax:
        x = g.op1("Softmax", [x], axis=-1)
    g.op("TopK", [x, g.const("k", np.array([k], np.int64))], outs=["scores", "indices"],
         axis=-1, largest=1, sorted=1)
    inp = helper.make_tensor_value_info(logits.name, TensorProto.FLOAT, list(logits.shape))
    outs = [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, k]),
            helper.make_tensor_value_info("indices", TensorProto.INT64, [1, k])]
    return _model(g, "classification_post", [inp], outs)


def _detection_count(g: GraphBuilder, selected: str) -> str:
    """Number of NMS rows as int64 [1] without Shape (not a runtime op): the batch column is
    all zeros, so ArgMax over [zeros..., 1] is the row count."""
    batch = g.op1("Gather", [selected, g.const("col", np.array(0, np.int64))], axis=1)
    zeros = g.op1("Cast", [batch], to=TensorProto.FLOAT)
    marked = g.op1("Concat", [zeros, g.const("one", np.array([1.0], np.float32))], axis=0)
    return g.op1("ArgMax", [marked], axis=0, keepdims=1)


# The geometry the detection post undoes: static (a fixed source size) or computed in the graph
# from the ``image_size`` input (run-time frame size).
PostGeometry = Geometry | GeometryTensors


def _source_map(g: GraphBuilder, geo: PostGeometry, pairs: int) -> tuple[str, str, str]:
    """(padding offset, scale, source size) as ``pairs`` repeated (x, y) pairs."""
    if isinstance(geo, GeometryTensors):
        order = [1, 0] * pairs  # (y, x) vectors -> x, y, ...
        return pick(g, geo.lead, order), pick(g, geo.scale, order), pick(g, geo.src, order)
    return (g.const("pad", np.array([geo.left, geo.top] * pairs, np.float32)),
            g.const("scale", np.array([geo.scale_x, geo.scale_y] * pairs, np.float32)),
            g.const("limit", np.array([geo.src_w, geo.src_h] * pairs, np.float32)))


def _to_source(g: GraphBuilder, boxes: str, geo: PostGeometry | None) -> str:
    """Undo letterbox/stretch (subtract padding, divide by scale) and clip to the image."""
    if geo is None:
        return boxes
    offset, scale, lim = _source_map(g, geo, 2)
    x = g.op1("Div", [g.op1("Sub", [boxes, offset]), scale])
    x = g.op1("Relu", [x])
    return g.op1("Where", [g.op1("Greater", [x, lim]), lim, x])


def _keypoints_to_source(g: GraphBuilder, extras: str, count: int, geo: PostGeometry) -> str:
    """Map (x, y, visibility) triples [K, 3 * count] from model-input to source pixels."""
    kp = g.op1("Reshape", [extras, g.const("shape", np.array([-1, count, 3], np.int64))])
    xy, vis = g.op("Split", [kp, g.const("split", np.array([2, 1], np.int64))], 2, axis=2)
    offset, scale, limit = _source_map(g, geo, 1)
    x = g.op1("Div", [g.op1("Sub", [xy, offset]), scale])
    x = g.op1("Relu", [x])
    x = g.op1("Where", [g.op1("Greater", [x, limit]), limit, x])
    kp = g.op1("Concat", [x, vis], axis=2)
    return g.op1("Reshape", [kp, g.const("shape", np.array([-1, 3 * count], np.int64))])


def detection_columns(post: DetectionPost, shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(boxes N, values per box, classes C) of a detection output in ``post.layout``."""
    if len(shape) != 3 or shape[0] != 1:
        want = "[1, values, N]" if post.layout == "columns" else "[1, N, values]"
        raise ModelError(f"detection output {post.output!r} must be {want} for layout "
                         f"{post.layout!r}, the model gives {list(shape)}")
    n, d = (shape[2], shape[1]) if post.layout == "columns" else (shape[1], shape[2])
    num_classes = d - 4 - int(post.has_objectness) - post.extra_columns
    if num_classes < 1:
        raise ModelError(f"detection output {post.output!r} has {d} values per box: no room "
                         f"for 4 box values{' + objectness' if post.has_objectness else ''} + "
                         f"classes + {post.extra_columns} extra columns")
    return n, d, num_classes


def _two_tensor_head(boxes: TensorDesc,
                     scores: TensorDesc) -> tuple[int, int]:
    """(boxes N, classes C) of a boxes [1, N, 4] + scores [1, N, C] head, or of a per-image
    one without the batch dimension, [N, 4] + [N, C] (torchvision's post-processing)."""
    batch = len(boxes.shape) == 3
    if len(boxes.shape) not in (2, 3) or (batch and boxes.shape[0] != 1) or (
            boxes.shape[-1] != 4):
        raise ModelError(f"detection boxes {boxes.name!r} must be [1, N, 4] or [N, 4] with "
                         f"scores_output, the model gives {list(boxes.shape)}")
    if len(scores.shape) != len(boxes.shape) or scores.shape[:-1] != boxes.shape[:-1]:
        want = f"[1, {boxes.shape[1]}, classes]" if batch else f"[{boxes.shape[0]}, classes]"
        raise ModelError(f"detection scores {scores.name!r} must be {want} beside boxes "
                         f"{list(boxes.shape)}, the model gives {list(scores.shape)}")
    return boxes.shape[-2], scores.shape[-1]


def _without_background(g: GraphBuilder, scores: str, classes: int, background: int) -> str:
    """Scores [1, N, C] with the background class's set to -1, below any score threshold
    (the class indices of the others stay as the model numbers them)."""
    if background >= classes:
        raise ModelError(f"background_class {background} does not exist: the head has "
                         f"{classes} classes")
    keep = np.ones(classes, np.float32)
    keep[background] = 0.0
    return g.op1("Add", [g.op1("Mul", [scores, g.const("keep", keep)]),
                         g.const("background", keep - 1.0)])


def build_detection_post(
    post: DetectionPost,
    predictions: TensorDesc,
    pre: PreprocessSpec | None = None,
    model_input: TensorDesc | None = None,
    scores_desc: TensorDesc | None = None,
) -> onnx.ModelProto:
    """``predictions`` [1, N, 4 + obj + C + E] (``rows``) or [1, 4 + obj + C + E, N]
    (``columns``) -> per-class NMS -> the best ``max_detections`` by score -> ``boxes`` [K, 4]
    (x1, y1, x2, y2 in source pixels), ``scores`` [K], ``classes`` [K] and, with E extra
    columns, ``extras`` [K, E] (keypoints mapped to source pixels like the boxes). Without
    ``pre`` the boxes stay in model-input pixels. With ``post.scores_output`` the boxes
    [1, N, 4] and the class scores ``scores_desc`` [1, N, C] come as two inputs (or [N, 4] and
    [N, C]). ``post.background_class`` is never a detection."""
    if post.scores_output is not None:
        if scores_desc is None:
            raise ValueError("scores_output needs the scores tensor")
        n, num_classes = _two_tensor_head(predictions, scores_desc)
    else:
        n, _, num_classes = detection_columns(post, predictions.shape)
    obj = 1 if post.has_objectness else 0
    extra = post.extra_columns
    g = GraphBuilder(0)
    geo: PostGeometry | None = None
    if pre is not None and model_input is not None:
        _, h, w = model_hw(pre, model_input)
        geo = geometry_tensors(g, pre, h, w) if pre.bounded else geometry(pre, h, w)
    if scores_desc is not None and post.scores_output is not None:
        parts = [predictions.name, scores_desc.name]
        if len(predictions.shape) == 2:  # per-image tensors: add the batch dimension
            axis = g.const("batch_axis", np.array([0], np.int64))
            parts = [g.op1("Unsqueeze", [t, axis]) for t in parts]
    else:
        rows = predictions.name
        if post.layout == "columns":
            rows = g.op1("Transpose", [rows], perm=[0, 2, 1])  # [1, N, values]
        sizes = [4, *([1] if obj else []), num_classes, *([extra] if extra else [])]
        parts = g.op("Split", [rows, g.const("split", np.array(sizes, np.int64))],
                     len(sizes), axis=2)
    box = parts[0]
    scores = g.op1("Mul", [parts[2], parts[1]]) if obj else parts[1]  # [1, N, C]
    if post.background_class is not None:
        scores = _without_background(g, scores, num_classes, post.background_class)
    if post.box_format == "cxcywh":
        centre, size = g.op("Split", [box, g.const("split", np.array([2, 2], np.int64))], 2,
                            axis=2)
        half = g.op1("Mul", [size, g.const("half", np.array(0.5, np.float32))])
        box = g.op1("Concat", [g.op1("Sub", [centre, half]), g.op1("Add", [centre, half])], axis=2)
    class_scores = g.op1("Transpose", [scores], perm=[0, 2, 1])  # [1, C, N]
    selected = g.op1("NonMaxSuppression", [
        box, class_scores,
        g.const("max_per_class", np.array([post.max_detections], np.int64)),
        g.const("iou", np.array([post.iou_threshold], np.float32)),
        g.const("score", np.array([post.score_threshold], np.float32)),
    ], center_point_box=0)  # [M, 3]: batch, class, box index
    cls = g.op1("Gather", [selected, g.const("col", np.array(1, np.int64))], axis=1)
    idx = g.op1("Gather", [selected, g.const("col", np.array(2, np.int64))], axis=1)
    flat = g.op1("Add", [g.op1("Mul", [cls, g.const("n", np.array(n, np.int64))]), idx])
    flat_scores = g.op1("Reshape", [class_scores, g.const("shape", np.array([-1], np.int64))])
    sel_scores = g.op1("Gather", [flat_scores, flat], axis=0)  # [M]
    count = _detection_count(g, selected)
    limit = g.const("max_det", np.array([post.max_detections], np.int64))
    k = g.op1("Where", [g.op1("Less", [count, limit]), count, limit])
    top_scores, order = g.op("TopK", [sel_scores, k], 2, axis=0, largest=1, sorted=1)
    g.op1("Identity", [top_scores], out="scores")
    g.op1("Gather", [cls, order], axis=0, out="classes")
    kept_idx = g.op1("Gather", [idx, order], axis=0)
    flat_boxes = g.op1("Reshape", [box, g.const("shape", np.array([n, 4], np.int64))])
    kept = g.op1("Gather", [flat_boxes, kept_idx], axis=0)
    g.op1("Identity", [_to_source(g, kept, geo)], out="boxes")
    if extra:
        flat_extras = g.op1("Reshape", [parts[-1], g.const("shape", np.array([n, extra],
                                                                                np.int64))])
        extras = g.op1("Gather", [flat_extras, kept_idx], axis=0)
        if post.keypoints and geo is not None:
            extras = _keypoints_to_source(g, extras, extra // 3, geo)
        g.op1("Identity", [extras], out="extras")

    inputs = [helper.make_tensor_value_info(t.name, TensorProto.FLOAT, list(t.shape))
              for t in (predictions, scores_desc if post.scores_output else None) if t]
    if isinstance(geo, GeometryTensors):
        inputs.append(_size_input())
    outs = [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, ["detections", 4]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["detections"]),
            helper.make_tensor_value_info("classes", TensorProto.INT64, ["detections"])]
    if extra:
        outs.append(helper.make_tensor_value_info("extras", TensorProto.FLOAT,
                                                  ["detections", extra]))
    return _model(g, "detection_post", inputs, outs)


def detection_outputs(post: DetectionPost) -> tuple[TensorDesc, ...]:
    """The detection post's outputs as the manifest describes them (dynamic dim 0)."""
    m = post.max_detections
    outs: tuple[TensorDesc, ...] = (TensorDesc("boxes", "float32", (m, 4), None, True),
                                     TensorDesc("scores", "float32", (m,), None, True),
                                     TensorDesc("classes", "int64", (m,), None, True))
    if post.extra_columns:
        outs += (TensorDesc("extras", "float32", (m, post.extra_columns), None, True),)
    return outs


def build_crop(pre: PreprocessSpec, input: TensorDesc) -> onnx.ModelProto:
    """``image`` uint8 [H, W, C] + ``boxes`` [K, 4] (source pixels) -> RoiAlign crops resized to
    the classifier input: ``output`` [K, C, h, w] (or [K, h, w, C] for nhwc)."""
    c, h, w = model_hw(pre, input)
    g = GraphBuilder(0)
    x = _normalise(g, _image_to_nchw(g, pre), pre, c)
    first = g.op1("Gather", ["boxes", g.const("col", np.array(0, np.int64))], axis=1)  # [K]
    zeros = g.op1("Mul", [first, g.const("zero", np.array(0.0, np.float32))])
    batch = g.op1("Cast", [zeros], to=TensorProto.INT64)
    crops = g.op1("RoiAlign", [x, "boxes", batch], mode="avg", output_height=h,
                  output_width=w, sampling_ratio=2, spatial_scale=1.0,
                  coordinate_transformation_mode="half_pixel")
    if pre.layout == "nhwc":
        g.op1("Transpose", [crops], perm=[0, 2, 3, 1], out="output")
    else:
        g.op1("Identity", [crops], out="output")
    boxes = helper.make_tensor_value_info("boxes", TensorProto.FLOAT, ["boxes", 4])
    shape: list[int | str] = ["boxes", *input.shape[1:]]
    out = helper.make_tensor_value_info("output", DTYPE_TO_ONNX["float32"], shape)
    return _model(g, "crop", [_image_input(pre), boxes], [out])

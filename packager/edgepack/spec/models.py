# SPDX-License-Identifier: Apache-2.0
"""The ``[[models]]`` part of edgepack.toml: paths, labels, inputs, pre- and postprocessing.

Each model file is opened once with ``onnx.load(..., load_external_data=False)`` (graph only,
cheap) so input and output names and static shapes can be checked here, where the message
can still point at the line of the spec that is wrong.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import onnx

from edgepack.model.cut import tensor_names, unknown_tensor_message
from edgepack.spec.fields import Table, type_name
from edgepack.spec.project import (
    ClassificationPost,
    DetectionPost,
    InputSpec,
    ModelSpec,
    PostprocessSpec,
    PreprocessSpec,
    QuantizeSpec,
)

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
PIXEL_FORMATS = ("rgb", "bgr", "gray")
_CHANNELS = {"rgb": 3, "bgr": 3, "gray": 1}

MODEL_KEYS = ("name", "path", "labels", "inputs", "outputs", "postprocess", "quantize")
QUANTIZE_KEYS = ("dtype", "calibration", "method", "per_channel", "exclude", "min_cosine",
                 "min_top1", "min_detections")
INPUT_KEYS = ("name", "shape", "preprocess")
PREPROCESS_KEYS = ("source_size", "source_size_min", "source_size_max", "pixel_format",
                   "model_format", "resize", "interpolation", "pad_value", "mean", "std",
                   "layout")
CLASSIFICATION_KEYS = ("kind", "output", "softmax", "top_k")
DETECTION_KEYS = ("kind", "output", "box_format", "has_objectness", "score_threshold",
                  "iou_threshold", "max_detections", "layout", "extra_columns", "keypoints",
                  "scores_output", "background_class")


@dataclass(frozen=True)
class OnnxGraphInfo:
    """Names and shapes of a model's graph inputs and outputs (None for a symbolic dim)."""

    inputs: dict[str, tuple[int | None, ...]]
    outputs: dict[str, tuple[int | None, ...]]


def _dims(value_info: Any) -> tuple[int | None, ...]:
    dims = value_info.type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)


def _fmt_dims(dims: tuple[int | None, ...]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


def read_graph_info(t: Table, path: Path) -> OnnxGraphInfo:
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and friends; all mean "not a model"
        t.fail("path", f"{path} is not a readable ONNX model ({type(exc).__name__}: {exc})")
    init = {i.name for i in model.graph.initializer}
    outputs = {o.name: _dims(o) for o in model.graph.output}
    if t.has("outputs"):
        outputs = _cut_outputs(t, model)
    return OnnxGraphInfo(
        inputs={i.name: _dims(i) for i in model.graph.input if i.name not in init},
        outputs=outputs)


def _cut_outputs(t: Table, model: onnx.ModelProto) -> dict[str, tuple[int | None, ...]]:
    """``outputs = [...]``: tensors of the graph the model is cut at, with their shapes as
    far as shape inference on the weight-less graph knows them (checked again at pack time)."""
    value = t.data["outputs"]
    if not (isinstance(value, list) and value and all(isinstance(v, str) and v for v in value)):
        t.fail("outputs", "expected a non-empty array of tensor names, found "
               f"{type_name(value)}")
    if len(set(value)) != len(value):
        t.fail("outputs", "a tensor is listed twice")
    known = set(tensor_names(model.graph))
    for name in value:
        if name not in known:
            t.fail("outputs", unknown_tensor_message(name, model.graph))
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False).graph
        values = {v.name: v for v in [*inferred.value_info, *inferred.output, *inferred.input]}
    except Exception:  # shapes are checked again, with a message, when the model is packed
        values = {}
    return {name: _dims(values[name]) if name in values else () for name in value}


def check_name(t: Table, key: str, what: str) -> str:
    name = t.string(key)
    if not NAME_RE.match(name):
        t.fail(key, f"invalid {what} {name!r}: use lowercase letters, digits, '-' and '_', "
               "starting with a letter or digit")
    return name


# A labels file is one label per line; a larger file is a mistake (a model named by accident).
MAX_LABELS_BYTES = 4 * 1024 * 1024


def project_file(t: Table, key: str, value: str) -> Path:
    """``value`` resolved inside the project folder: a path (or symlink) that leads outside it
    is refused, so a spec cannot pull an arbitrary file of this machine into an artifact."""
    path = (t.ctx.root / value).resolve()
    if not path.is_relative_to(t.ctx.root):
        t.fail(key, f"{value} resolves to {path}, outside the project folder {t.ctx.root}",
               hint="copy the file into the project folder")
    if not path.is_file():
        t.fail(key, f"file not found: {value} (resolved to {path})")
    return path


def parse_model(t: Table) -> ModelSpec:
    t.check_keys(MODEL_KEYS)
    name = check_name(t, "name", "model name")
    path = project_file(t, "path", t.string("path"))
    info = read_graph_info(t, path)
    labels = _labels(t)
    inputs = _inputs(t, info)
    post = _postprocess(t, info, labels)
    outputs = tuple(info.outputs) if t.has("outputs") else None
    quantize = _quantize(t.table("quantize"), path) if t.has("quantize") else None
    return ModelSpec(name=name, path=path, inputs=inputs, postprocess=post, labels=labels,
                     outputs=outputs, quantize=quantize)


def _quantize(q: Table, model_path: Path) -> QuantizeSpec:
    """``[models.quantize]``; the calibration folder's files are read (and checked) at pack."""
    q.check_keys(QUANTIZE_KEYS)
    dtype = q.string("dtype", None, ("int8", "fp16"))
    calibration: Path | None = None
    if dtype == "fp16":
        for key in ("calibration", "method", "per_channel", "min_top1", "min_detections"):
            if q.has(key):
                q.fail(key, f"{key!r} applies to dtype = \"int8\" only (fp16 stores the weights "
                       "in half precision, no calibration)")
    else:
        value = q.string("calibration")
        calibration = (q.ctx.root / value).resolve()
        if not calibration.is_relative_to(q.ctx.root):
            q.fail("calibration", f"{value} resolves to {calibration}, outside the project "
                   f"folder {q.ctx.root}", hint="copy the calibration data into the project")
        if not calibration.is_dir():
            q.fail("calibration", f"folder not found: {value} (resolved to {calibration})",
                   hint="a folder of images or <input>.npy / <input>_<i>.npy tensors")
    exclude = q.data.get("exclude", [])
    if not isinstance(exclude, list) or not all(isinstance(v, str) and v for v in exclude):
        q.fail("exclude", f"expected an array of node names, found {type_name(exclude)}")
    if exclude:
        nodes = {n.name for n in onnx.load(str(model_path), load_external_data=False).graph.node}
        for name in exclude:
            if name not in nodes:
                close = difflib.get_close_matches(name, sorted(nodes), n=1)
                q.fail("exclude", f"model has no node named {name!r}",
                       hint=f"did you mean {close[0]!r}?" if close else None)
    return QuantizeSpec(
        dtype=dtype,  # type: ignore[arg-type]
        calibration=calibration,
        method=q.string("method", "minmax", ("minmax", "entropy", "percentile")),  # type: ignore[arg-type]
        per_channel=q.boolean("per_channel", True),
        exclude=tuple(exclude),
        min_cosine=q.number("min_cosine", 0.98, 0.0, 1.0),
        min_top1=q.number("min_top1", 0.9, 0.0, 1.0),
        min_detections=q.number("min_detections", 0.8, 0.0, 1.0))


def _read_labels(t: Table, path: Path, value: str) -> str:
    with path.open("rb") as f:
        raw = f.read(MAX_LABELS_BYTES + 1)
    if len(raw) > MAX_LABELS_BYTES:
        t.fail("labels", f"label file {value} is larger than {MAX_LABELS_BYTES} bytes; "
               "expected one label per line")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        t.fail("labels", f"label file {value} is not UTF-8 text (byte 0x{raw[exc.start]:02x} "
               f"at offset {exc.start}); expected one label per line")
    if "\x00" in text:
        t.fail("labels", f"label file {value} contains NUL bytes; expected one label per line")
    return text


def _labels(t: Table) -> tuple[str, ...] | None:
    if not t.has("labels"):
        return None
    value = t.data["labels"]
    if isinstance(value, str):
        text = _read_labels(t, project_file(t, "labels", value), value)
        # One label per line; blank lines (a trailing newline, spacing) carry no label.
        labels = [line.strip() for line in text.splitlines() if line.strip()]
        if not labels:
            t.fail("labels", f"label file {value} has no labels (one label per line)")
        return tuple(labels)
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    t.fail("labels", "expected a non-empty array of non-empty strings or the path of a text "
           f"file with one label per line, found {type_name(value)}")


def _inputs(t: Table, info: OnnxGraphInfo) -> tuple[InputSpec, ...]:
    declared: list[InputSpec] = []
    for it in t.tables("inputs") if t.has("inputs") else []:
        it.check_keys(INPUT_KEYS)
        name = it.string("name")
        if name not in info.inputs:
            it.fail("name", f"model has no input {name!r} (inputs: "
                    f"{', '.join(info.inputs) or 'none'})")
        if any(d.name == name for d in declared):
            it.fail("name", f"input {name!r} is listed twice")
        shape = _shape(it, info.inputs[name])
        pre = _preprocess(it.table("preprocess"), shape) if it.has("preprocess") else None
        declared.append(InputSpec(name=name, shape=shape, preprocess=pre))
    # Inputs the spec leaves out are taken from the model when their shape is static.
    for name, dims in info.inputs.items():
        if not any(d.name == name for d in declared):
            if any(d is None or d <= 0 for d in dims):
                t.fail("inputs", f"model input {name!r} has a dynamic shape "
                       f"{_fmt_dims(dims)}; give it a static one in [[models.inputs]] with "
                       f"name = {name!r} and shape = [...]")
            declared.append(InputSpec(name=name, shape=tuple(d for d in dims if d)))
    return tuple(declared)


def _shape(it: Table, model_dims: tuple[int | None, ...]) -> tuple[int, ...]:
    if not it.has("shape"):
        if any(d is None or d <= 0 for d in model_dims):
            it.fail(None, f"the model input has a dynamic shape {_fmt_dims(model_dims)}; "
                    "add shape = [...] with every dimension fixed")
        return tuple(d for d in model_dims if d)
    shape = it.ints("shape")
    if not shape or any(d <= 0 for d in shape):
        it.fail("shape", f"every dimension must be a positive integer, got {list(shape)}")
    if len(shape) != len(model_dims):
        it.fail("shape", f"rank {len(shape)} does not match the model input's rank "
                f"{len(model_dims)} ({_fmt_dims(model_dims)})")
    for i, (s, m) in enumerate(zip(shape, model_dims, strict=True)):
        if m and s != m:
            it.fail("shape", f"dimension {i} is {s} but the model fixes it to {m}")
    return shape


def _preprocess(p: Table, shape: tuple[int, ...]) -> PreprocessSpec:
    p.check_keys(PREPROCESS_KEYS)
    size = p.ints("source_size")
    if len(size) != 2 or any(v <= 0 for v in size):
        p.fail("source_size", f"expected [height, width] with positive integers, got {list(size)}")
    low, high = _size_bounds(p, (size[0], size[1]))
    pixel = p.string("pixel_format", "rgb", PIXEL_FORMATS)
    model_fmt = p.string("model_format", "rgb", PIXEL_FORMATS)
    resize = p.string("resize", "stretch", ("stretch", "letterbox"))
    interp = p.string("interpolation", "linear", ("linear", "nearest"))
    pad = p.number("pad_value", 114.0, 0.0, 255.0)
    layout = p.string("layout", "nchw", ("nchw", "nhwc"))
    if len(shape) != 4 or shape[0] != 1:
        p.fail(None, f"preprocessing needs a 4-D input with batch 1, the input shape is "
               f"{list(shape)}")
    channels = shape[1] if layout == "nchw" else shape[3]
    if channels != _CHANNELS[model_fmt]:
        p.fail("model_format", f"model_format {model_fmt!r} has {_CHANNELS[model_fmt]} "
               f"channel(s) but the input shape {list(shape)} ({layout}) has {channels}")
    mean = p.numbers("mean", (0.0,) * channels)
    std = p.numbers("std", (1.0,) * channels)
    for key, values in (("mean", mean), ("std", std)):
        if len(values) != channels:
            p.fail(key, f"needs {channels} value(s), one per model channel, got {len(values)}")
    if any(s == 0 for s in std):
        p.fail("std", "values must not be 0 (the input is divided by them)")
    return PreprocessSpec(source_size=(size[0], size[1]), pixel_format=pixel,  # type: ignore[arg-type]
                          model_format=model_fmt, resize=resize,  # type: ignore[arg-type]
                          interpolation=interp, pad_value=pad,  # type: ignore[arg-type]
                          mean=mean, std=std, layout=layout,  # type: ignore[arg-type]
                          source_size_min=low, source_size_max=high)


def _size_bounds(p: Table, nominal: tuple[int, int]
                 ) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
    """``source_size_min`` / ``source_size_max``: both or neither, each [height, width] of
    positive integers, min <= source_size <= max per dimension."""
    given = [k for k in ("source_size_min", "source_size_max") if p.has(k)]
    if not given:
        return None, None
    if len(given) == 1:
        other = "source_size_max" if given[0] == "source_size_min" else "source_size_min"
        p.fail(other, f"{given[0]} needs {other} too (the run-time frame size bounds)")
    bounds = []
    for key in ("source_size_min", "source_size_max"):
        v = p.ints(key)
        if len(v) != 2 or any(d <= 0 for d in v):
            p.fail(key, f"expected [height, width] with positive integers, got {list(v)}")
        bounds.append((v[0], v[1]))
    low, high = bounds
    if low[0] > high[0] or low[1] > high[1]:
        p.fail("source_size_min", f"{list(low)} exceeds source_size_max {list(high)}")
    if not (low[0] <= nominal[0] <= high[0] and low[1] <= nominal[1] <= high[1]):
        p.fail("source_size", f"{list(nominal)} is outside source_size_min {list(low)} .. "
               f"source_size_max {list(high)}")
    return low, high


def _postprocess(t: Table, info: OnnxGraphInfo,
                 labels: tuple[str, ...] | None) -> PostprocessSpec | None:
    if not t.has("postprocess"):
        return None
    p = t.table("postprocess")
    kind = p.string("kind", None, ("classification", "detection", "none"))
    if kind == "none":
        p.check_keys(("kind",), 'postprocess with kind = "none"')
        return None
    p.check_keys(CLASSIFICATION_KEYS if kind == "classification" else DETECTION_KEYS,
                 f"{kind} postprocess")
    output = p.string("output")
    if output not in info.outputs:
        p.fail("output", f"model has no output {output!r} (outputs: {', '.join(info.outputs)})")
    dims = info.outputs[output]
    last = dims[-1] if dims else None
    if kind == "classification":
        top_k = p.integer("top_k", 5, minimum=1)
        if labels is not None and last and len(labels) != last:
            t.fail("labels", f"{len(labels)} labels but output {output!r} has {last} classes")
        classes = last or (len(labels) if labels else None)
        if classes and top_k > classes:
            p.fail("top_k", f"top_k {top_k} exceeds the number of classes ({classes})")
        return ClassificationPost(output=output, softmax=p.boolean("softmax", True), top_k=top_k)
    if p.has("scores_output"):
        return _two_tensor_detection(t, p, info, output, labels)
    layout = p.string("layout", "rows", ("rows", "columns"))
    post = DetectionPost(
        output=output,
        box_format=p.string("box_format", "cxcywh", ("cxcywh", "xyxy")),  # type: ignore[arg-type]
        # YOLOv8 / YOLO11 heads ([1, values, N]) have no objectness column.
        has_objectness=p.boolean("has_objectness", layout == "rows"),
        score_threshold=p.number("score_threshold", 0.25, 0.0, 1.0),
        iou_threshold=p.number("iou_threshold", 0.45, 0.0, 1.0),
        max_detections=p.integer("max_detections", 100, minimum=1),
        layout=layout,  # type: ignore[arg-type]
        extra_columns=p.integer("extra_columns", 0, minimum=0),
        keypoints=p.boolean("keypoints", False))
    if p.has("background_class"):
        values = dims[1] if layout == "columns" and len(dims) == 3 else dims[-1]
        classes = values - 4 - int(post.has_objectness) - post.extra_columns if values else None
        post = replace(post, background_class=_background(p, classes))
    if post.keypoints and (post.extra_columns == 0 or post.extra_columns % 3):
        p.fail("keypoints", "keypoints need extra_columns to be a positive multiple of 3 "
               f"(x, y, visibility per keypoint), extra_columns is {post.extra_columns}")
    shape = "[1, values, boxes]" if layout == "columns" else "[1, boxes, values]"
    if len(dims) != 3:
        p.fail("output", f"a detection output with layout {layout!r} must be {shape}, "
               f"{output!r} has shape {_fmt_dims(dims)}")
    values = dims[1] if layout == "columns" else dims[2]
    fixed = 4 + int(post.has_objectness) + post.extra_columns
    parts = (f"4 box + {int(post.has_objectness)} objectness + classes + "
             f"{post.extra_columns} extra_columns")
    if values and values - fixed < 1:
        p.fail("output", f"{output!r} has shape {_fmt_dims(dims)}: {values} values per box "
               f"leave no class scores ({parts}); check layout, has_objectness and "
               "extra_columns")
    if labels is not None and values:
        want = fixed + len(labels)
        if want != values:
            t.fail("labels", f"{len(labels)} labels need {want} values per box in {output!r} "
                   f"({parts}), its shape {_fmt_dims(dims)} has {values} (layout {layout!r})")
    return post


def _background(p: Table, classes: int | None) -> int | None:
    """``background_class``: a class index below ``classes`` that is never a detection."""
    if not p.has("background_class"):
        return None
    background = p.integer("background_class", minimum=0)
    if classes and background >= classes:
        p.fail("background_class", f"class {background} does not exist: the head has "
               f"{classes} classes")
    return background


def _two_tensor_detection(t: Table, p: Table, info: OnnxGraphInfo, output: str,
                          labels: tuple[str, ...] | None) -> DetectionPost:
    """``output`` = boxes [1, N, 4], ``scores_output`` = class scores [1, N, C]; or both
    without the batch dimension, [N, 4] and [N, C] (torchvision's per-image tensors)."""
    for key in ("layout", "extra_columns", "keypoints"):
        if p.has(key):
            p.fail(key, f"{key!r} does not apply with scores_output (boxes and class scores "
                   "in two outputs, one row per box)")
    if p.boolean("has_objectness", False):
        p.fail("has_objectness", "a head with scores_output has no objectness (boxes and class "
               "scores in two outputs)")
    scores = p.string("scores_output")
    if scores not in info.outputs:
        p.fail("scores_output", f"model has no output {scores!r} (outputs: "
               f"{', '.join(info.outputs)})")
    if scores == output:
        p.fail("scores_output", "must differ from output (the boxes)")
    boxes_dims, scores_dims = info.outputs[output], info.outputs[scores]
    if len(boxes_dims) not in (2, 3) or boxes_dims[-1] not in (4, None):
        p.fail("output", f"with scores_output, {output!r} must be the boxes [1, N, 4] or "
               f"[N, 4], it has shape {_fmt_dims(boxes_dims)}")
    if len(scores_dims) != len(boxes_dims):
        p.fail("scores_output", f"{scores!r} must be the class scores "
               f"{'[1, N, classes]' if len(boxes_dims) == 3 else '[N, classes]'} beside the "
               f"boxes {_fmt_dims(boxes_dims)}, it has shape {_fmt_dims(scores_dims)}")
    if None not in (boxes_dims[-2], scores_dims[-2]) and boxes_dims[-2] != scores_dims[-2]:
        p.fail("scores_output", f"{scores!r} {_fmt_dims(scores_dims)} and {output!r} "
               f"{_fmt_dims(boxes_dims)} differ in the number of boxes")
    if labels is not None and scores_dims[-1] and len(labels) != scores_dims[-1]:
        t.fail("labels", f"{len(labels)} labels but {scores!r} {_fmt_dims(scores_dims)} has "
               f"{scores_dims[-1]} classes")
    background = _background(p, scores_dims[-1])
    return DetectionPost(
        output=output,
        box_format=p.string("box_format", "cxcywh", ("cxcywh", "xyxy")),  # type: ignore[arg-type]
        has_objectness=False,
        score_threshold=p.number("score_threshold", 0.25, 0.0, 1.0),
        iou_threshold=p.number("iou_threshold", 0.45, 0.0, 1.0),
        max_detections=p.integer("max_detections", 100, minimum=1),
        scores_output=scores, background_class=background)
